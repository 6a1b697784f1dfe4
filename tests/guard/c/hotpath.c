// Hot-path rates for the runtime guard benchmark: open()+close() and fork+execve per second.
// Usage: hotpath open|exec SECONDS PATH   (PATH: the file to open, or the program to exec)
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	if (argc != 4) return 2;
	double secs = atof(argv[2]), start = now(), end = start + secs;
	long n = 0;
	if (strcmp(argv[1], "open") == 0) {
		while (now() < end) {
			for (int i = 0; i < 256; i++) {
				int fd = open(argv[3], O_RDONLY);
				if (fd < 0) { perror("open"); return 1; }
				close(fd);
			}
			n += 256;
		}
	} else {
		char *args[] = {argv[3], NULL};
		while (now() < end) {
			pid_t p = fork();
			if (p == 0) { execv(argv[3], args); _exit(127); }
			int st;
			waitpid(p, &st, 0);
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { fprintf(stderr, "exec failed\n"); return 1; }
			n++;
		}
	}
	printf("%.1f\n", n / (now() - start));
	return 0;
}
