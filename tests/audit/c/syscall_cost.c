// Syscall-bound loops for the audit's untraced-workload benchmark (tests/audit/syscall_cost_bench.ts).
// Usage: syscall_cost getppid|rw|open N [PATH]   prints "<ops> <wall s> <CPU s>" (one op: getppid(2);
// read(2) of 1 byte from /dev/zero + write(2) of it to /dev/null; openat(2) of PATH + close(2)).
// `syscall_cost run N SCRIPT` runs `sh -c SCRIPT` (N ops) and reports its and its children's CPU
// time (getrusage: microseconds, where the shell's `times` gives clock ticks).
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

// This process's CPU time: what the loop cost it, not the time others ran on its core.
static double cpu(void) {
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	long n = atol(argv[2]);
	char c;
	double t0, c0 = cpu();
	if (strcmp(argv[1], "getppid") == 0) {
		t0 = now();
		c0 = cpu();
		for (long i = 0; i < n; i++) getppid();
	} else if (strcmp(argv[1], "rw") == 0) {
		int in = open("/dev/zero", O_RDONLY), out = open("/dev/null", O_WRONLY);
		if (in < 0 || out < 0) { perror("open /dev/zero or /dev/null"); return 1; }
		t0 = now();
		c0 = cpu();
		for (long i = 0; i < n; i++) {
			if (read(in, &c, 1) != 1 || write(out, &c, 1) != 1) { perror("read/write"); return 1; }
		}
	} else if (strcmp(argv[1], "open") == 0 && argc == 4) {
		t0 = now();
		c0 = cpu();
		for (long i = 0; i < n; i++) {
			int fd = open(argv[3], O_RDONLY);
			if (fd < 0) { perror(argv[3]); return 1; }
			close(fd);
		}
	} else if (strcmp(argv[1], "run") == 0 && argc == 4) {
		t0 = now();
		pid_t p = fork();
		if (p == 0) {
			execl("/bin/sh", "sh", "-c", argv[3], (char *)0);
			_exit(127);
		}
		int st;
		if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "sh -c %s failed\n", argv[3]);
			return 1;
		}
		double wall = now() - t0;
		struct rusage ru;
		getrusage(RUSAGE_CHILDREN, &ru);
		printf("%ld %.9f %.6f\n", n, wall,
		       ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
			       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
		return 0;
	} else {
		return 2;
	}
	double wall = now() - t0;
	printf("%ld %.9f %.9f\n", n, wall, cpu() - c0);
	return 0;
}
