// SPDX-License-Identifier: GPL-2.0
// Empty programs on the syscall tracepoints: the floor any sys_enter/sys_exit capture pays (the
// kernel's traced-syscall path for every task), for tests/audit/syscall_cost_bench.ts.
// -DEXIT adds sys_exit. -DFENTRY instead: fentry+fexit on openat alone (per-syscall attachment,
// what untraced syscalls would pay where the kernel allows it: nothing).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#ifdef FENTRY
SEC("fentry/__x64_sys_openat")
int empty_fentry(void *ctx)
{
	return 0;
}

SEC("fexit/__x64_sys_openat")
int empty_fexit(void *ctx)
{
	return 0;
}
#else
SEC("raw_tracepoint/sys_enter")
int empty_sys_enter(void *ctx)
{
	return 0;
}
#endif

#ifdef EXIT
SEC("raw_tracepoint/sys_exit")
int empty_sys_exit(void *ctx)
{
	return 0;
}
#endif
