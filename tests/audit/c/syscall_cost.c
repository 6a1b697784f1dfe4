// Syscall-bound loops for the audit's untraced-workload benchmark (tests/audit/syscall_cost_bench.ts).
// Usage: syscall_cost getppid|rw|open N [PATH]   prints "<ops> <seconds>" (one op: getppid(2);
// read(2) of 1 byte from /dev/zero + write(2) of it to /dev/null; openat(2) of PATH + close(2)).
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	long n = atol(argv[2]);
	char c;
	double t0;
	if (strcmp(argv[1], "getppid") == 0) {
		t0 = now();
		for (long i = 0; i < n; i++) getppid();
	} else if (strcmp(argv[1], "rw") == 0) {
		int in = open("/dev/zero", O_RDONLY), out = open("/dev/null", O_WRONLY);
		if (in < 0 || out < 0) { perror("open /dev/zero or /dev/null"); return 1; }
		t0 = now();
		for (long i = 0; i < n; i++) {
			if (read(in, &c, 1) != 1 || write(out, &c, 1) != 1) { perror("read/write"); return 1; }
		}
	} else if (strcmp(argv[1], "open") == 0 && argc == 4) {
		t0 = now();
		for (long i = 0; i < n; i++) {
			int fd = open(argv[3], O_RDONLY);
			if (fd < 0) { perror(argv[3]); return 1; }
			close(fd);
		}
	} else {
		return 2;
	}
	printf("%ld %.9f\n", n, now() - t0);
	return 0;
}
