// Capability probes for the guard's guest tests: each prints the errno name of one operation
// ("ok" on success). Usage: probes raw|bpf|setuid
#include <errno.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int report(int rc) {
	if (rc >= 0) { puts("ok"); return 0; }
	fprintf(stderr, "%s\n", strerror(errno));
	return 1;
}

int main(int argc, char **argv) {
	if (argc != 2) return 2;
	if (!strcmp(argv[1], "raw")) return report(socket(AF_INET, SOCK_RAW, IPPROTO_ICMP));
	if (!strcmp(argv[1], "bpf")) {
		union bpf_attr a;
		memset(&a, 0, sizeof a);
		a.map_type = BPF_MAP_TYPE_ARRAY;
		a.key_size = 4;
		a.value_size = 4;
		a.max_entries = 1;
		return report(syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a));
	}
	if (!strcmp(argv[1], "setuid")) {
		// Root drops its effective uid, then takes it back: a transition to root.
		if (seteuid(1000) != 0) { perror("seteuid(1000)"); return 2; }
		return report(seteuid(0));
	}
	return 2;
}
