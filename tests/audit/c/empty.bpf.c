// SPDX-License-Identifier: GPL-2.0
// Empty programs on the syscall tracepoints: the floor any sys_enter/sys_exit capture pays (the
// kernel's traced-syscall path for every task), for tests/audit/syscall_cost_bench.ts.
// -DEXIT adds sys_exit.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("raw_tracepoint/sys_enter")
int empty_sys_enter(void *ctx)
{
	return 0;
}

#ifdef EXIT
SEC("raw_tracepoint/sys_exit")
int empty_sys_exit(void *ctx)
{
	return 0;
}
#endif
