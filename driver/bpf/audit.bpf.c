// SPDX-License-Identifier: GPL-2.0
// camblet-agent syscall audit: capture on the syscall tracepoints (tp_btf sys_enter/sys_exit),
// judged in the agent by Rego.
//
// Every syscall first checks `gate` (one inlined array lookup: the slot in force and a keep bit
// per syscall number); most stop there, the path the traced-syscall slow path adds to every
// task, kept short (the rest is in non-inlined subprograms). sys_enter of a syscall the loaded
// rules can match reads its arguments (path strings, sockaddr, argv) and the process context
// (ids, comm, cgroup, 6 ancestors; direct loads of the tp_btf register and task pointers) into
// `pending[pid_tgid]` and raises the task's `has_pending` flag. The prefilter: each filter group
// (one rule's declaration, bit g of a u64) names syscalls, optionally path prefixes, opens for
// writing only, and a cgroup scope (containers: a cgroup not in `host_cgroups`; workloads:
// `workload_cgroups[cgroup]` has bit g). An event leaves the kernel only when one group takes its
// syscall, its cgroup, its open flags and its absolute path (`prefixes`, an LPM trie whose value
// is the groups a prefix admits); else it is dropped and counted by reason. The filter is
// double-buffered: the agent writes the idle slot, then flips `gate.slot`. sys_exit returns at
// once unless the task's `has_pending` flag is up; then it adds the result code and sends the
// event through `events` (ring buffer); a full ring buffer is counted (STAT_LOST), never silent.
// sched_process_exec adds the executed file's name (memfd:… for a fileless exec) to a pending
// execve; sched_process_exit forgets a task's pending entry. A relative open is kept out when its
// cwd's first directory is the first component of no prefix (`prefix_tops`); other relative
// paths pass (the agent resolves them against the cwd); so do cgroups the agent has not
// classified (a new cgroup counts as a container until the host set is rescanned).
//
// x86_64 only (pt_regs argument registers). Build: driver/bpf/build.ts.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define MAX_SYSCALL 512
#define PATH_LEN 256
#define ARGV_N 8
#define ARGV_LEN 64
#define ANC_N 6
#define NO_ARG 7
#define HOW_ARG 8

struct pt_regs {
	unsigned long r10, r8, r9, dx, si, di, orig_ax;
} __attribute__((preserve_access_index));
struct qstr {
	const unsigned char *name;
} __attribute__((preserve_access_index));
struct dentry {
	struct qstr d_name;
	struct dentry *d_parent;
} __attribute__((preserve_access_index));
struct vfsmount;
struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
} __attribute__((preserve_access_index));
struct fs_struct {
	struct path root;
	struct path pwd;
} __attribute__((preserve_access_index));
struct file {
	struct path f_path;
} __attribute__((preserve_access_index));
struct linux_binprm {
	struct file *file;
	const char *filename;
} __attribute__((preserve_access_index));
struct task_struct {
	int pid;
	int tgid;
	char comm[16];
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	struct fs_struct *fs;
} __attribute__((preserve_access_index));

// What the agent compiled from the rules for one syscall number (in one slot).
struct syscall_cfg {
	__u8 keep;      // 1: some rule can match this syscall
	__u8 path_idx;  // argument holding a path string, or NO_ARG
	__u8 path2_idx; // second path (rename, link target), or NO_ARG
	__u8 addr_idx;  // argument holding a sockaddr (length in the next one), or NO_ARG
	__u8 argv_idx;  // argument holding argv (execve), or NO_ARG
	__u8 flags_idx; // argument holding open flags, HOW_ARG (openat2's open_how), or NO_ARG
	__u8 pad[2];
	__u64 groups;   // filter groups naming this syscall
	__u64 any_path; // of those, the ones taking any path
};

// Cgroup scope of the groups in one slot.
struct scope {
	__u64 unscoped;   // groups taking every cgroup
	__u64 containers; // groups taking cgroups not in host_cgroups
	__u64 writes;     // groups taking only opens for writing (O_WRONLY, O_RDWR)
};

struct event {
	__u64 ts;
	__u64 cgroup_id;
	__s64 ret;
	__u64 args[6];
	__u32 pid, tid, ppid, uid, gid, nr;
	__u32 argc;
	__u32 how_flags; // openat2: open_how.flags (low 32 bits: the O_* flags)
	char comm[16];
	__u32 anc_pid[ANC_N];
	char anc_comm[ANC_N][16];
	char path[PATH_LEN];
	char path2[PATH_LEN];
	char exe_name[64];
	__u8 addr[32];
	char argv[ARGV_N][ARGV_LEN];
};

struct lpm_key {
	__u32 prefixlen;
	char data[PATH_LEN];
};

#define STAT_SEEN 0
#define STAT_FILTERED 1
#define STAT_SENT 2
#define STAT_LOST 3
#define STAT_PENDING_FULL 4
#define STAT_FILTERED_PATH 5
#define STAT_FILTERED_CGROUP 6
#define STAT_FILTERED_FLAGS 7
#define STAT_N 8

// What every syscall checks first, in one lookup: the slot in force and whether its rules can
// match this syscall number at all (keep[nr] bit s: slot s can). Its first 8 bytes are what
// older builds called `config`.
struct gate {
	__u32 agent_tgid;
	__u32 slot; // the filter slot in force (0 or 1)
	__u8 keep[MAX_SYSCALL];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gate);
} gate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * MAX_SYSCALL); // slot * MAX_SYSCALL + nr
	__type(key, __u32);
	__type(value, struct syscall_cfg);
} syscalls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct scope);
} scopes SEC(".maps");

// Key data: the slot byte, then the path; value: the groups the prefix admits.
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 2048);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_key);
	__type(value, __u64);
} prefixes SEC(".maps");

// Per slot, the first component of every prefix (up to 15 bytes; "" for the prefix "/"): the
// groups with a prefix there. A relative open resolves below its cwd, so only these can take it.
struct top_key {
	__u32 slot;
	char name[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2048);
	__type(key, struct top_key);
	__type(value, __u64);
} prefix_tops SEC(".maps");

// Cgroups that are not containers (the agent's scan of the cgroup tree).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} host_cgroups SEC(".maps");

// Cgroups of attested workloads: per slot, the groups whose selectors they match.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64[2]);
} workload_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct event);
} pending SEC(".maps");

// Per task: 1 while it has a `pending` entry. sys_exit reads this instead of hashing into
// `pending`; a task that never had one has no storage at all (one pointer test in the helper).
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u8);
} has_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct event);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lpm_key);
} scratch_key SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_N);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

static __always_inline void count(__u32 i)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &i);
	if (v)
		*v += 1;
}

// Direct loads: tp_btf gives `regs` as a BTF pointer, no bpf_probe_read_kernel call per field.
static __always_inline __u64 arg(struct pt_regs *regs, __u8 i)
{
	switch (i) {
	case 0: return regs->di;
	case 1: return regs->si;
	case 2: return regs->dx;
	case 3: return regs->r10;
	case 4: return regs->r8;
	case 5: return regs->r9;
	}
	return 0;
}

// Of `groups`, those whose cgroup scope takes the current task's cgroup.
static __always_inline __u64 cgroup_pass(struct scope *sc, __u64 groups, __u32 slot)
{
	if (!sc)
		return groups;
	__u64 pass = sc->unscoped;
	if ((groups & ~pass) == 0)
		return groups;
	__u64 cg = bpf_get_current_cgroup_id();
	if ((groups & sc->containers) && !bpf_map_lookup_elem(&host_cgroups, &cg))
		pass |= sc->containers;
	__u64 *w = bpf_map_lookup_elem(&workload_cgroups, &cg);
	if (w)
		pass |= w[slot & 1];
	return groups & pass;
}

// Of `groups`, those taking this open's flags (a read drops the write-only ones).
static __always_inline __u64 flags_pass(struct syscall_cfg *cfg, struct scope *sc, __u64 groups,
					struct event *e)
{
	if (!sc || cfg->flags_idx == NO_ARG || !(groups & sc->writes))
		return groups;
	__u32 flags = cfg->flags_idx == HOW_ARG ? e->how_flags : (__u32)e->args[cfg->flags_idx & 7];
	return (flags & 3) ? groups : groups & ~sc->writes;
}

// True when the relative path of an open (n bytes with its NUL, in k->data[1..]) cannot lie
// under any prefix of `groups`: it names no "..", resolves against the cwd (open, or AT_FDCWD),
// and the cwd's first component below the task's root (same mount, at most 16 levels deep) is
// the first component of none of their prefixes. Anything else is not decided here (sent).
static __always_inline int relative_filtered(struct syscall_cfg *cfg, __u64 groups,
					     struct event *e, struct lpm_key *k, __u32 slot, long n)
{
	if (e->nr != 2 && e->nr != 257 && e->nr != 437)
		return 0;
	if (e->nr != 2 && (int)e->args[0] != -100) // AT_FDCWD
		return 0;
	for (int i = 1; i < PATH_LEN - 1; i++) {
		if (i >= n)
			break;
		if (k->data[i] == '.' && k->data[i + 1] == '.')
			return 0;
	}
	struct task_struct *t = bpf_get_current_task_btf();
	struct fs_struct *fs = t->fs;
	if (!fs)
		return 0;
	struct dentry *root = fs->root.dentry, *d = fs->pwd.dentry, *top = 0;
	if (fs->pwd.mnt != fs->root.mnt || d == root)
		return 0;
	for (int i = 0; i < 16; i++) {
		struct dentry *up = d->d_parent;
		if (up == root) {
			top = d;
			break;
		}
		if (!up || up == d)
			return 0; // a file system root that is not the task's: not decided
		d = up;
	}
	if (!top)
		return 0;
	struct top_key tk = {.slot = slot};
	__u64 *any = bpf_map_lookup_elem(&prefix_tops, &tk); // the prefix "/"
	if (any && (*any & groups))
		return 0;
	bpf_probe_read_kernel_str(tk.name, sizeof(tk.name), top->d_name.name);
	__u64 *admit = bpf_map_lookup_elem(&prefix_tops, &tk);
	return !(admit && (*admit & groups));
}

// Reads this event's path string (argument `cfg->path_idx`) into e->path; true (and counted) when
// no group in `groups` takes it. An absolute path the prefixes decide is read once, into the LPM
// key (slot byte, then the string; prefixlen covers only its bytes, so what follows from an
// earlier key is never compared and needs no clearing), and copied to the event only if kept.
static __always_inline int read_path_filtered(struct syscall_cfg *cfg, __u64 groups,
					      struct event *e, __u32 slot)
{
	__u32 zero = 0;
	const char *user = (const char *)e->args[cfg->path_idx & 7];
	struct lpm_key *k = (groups & cfg->any_path) ? 0 : bpf_map_lookup_elem(&scratch_key, &zero);
	if (!k) {
		// Fails when the string's page is not faulted in yet: sys_exit reads it again.
		bpf_probe_read_user_str(e->path, PATH_LEN, user);
		return 0;
	}
	long n = bpf_probe_read_user_str(&k->data[1], PATH_LEN - 1, user);
	if (n <= 0) {
		e->path[0] = 0; // sys_exit reads it again
		return 0;
	}
	if (k->data[1] != '/') {
		if (relative_filtered(cfg, groups, e, k, slot, n)) {
			count(STAT_FILTERED);
			count(STAT_FILTERED_PATH);
			return 1;
		}
		bpf_probe_read_kernel_str(e->path, PATH_LEN, &k->data[1]);
		return 0; // relative: the agent resolves it against the cwd
	}
	k->data[0] = slot;
	k->prefixlen = (__u32)n * 8; // the slot byte and n - 1 characters
	__u64 *admit = bpf_map_lookup_elem(&prefixes, k);
	if (admit && (*admit & groups)) {
		bpf_probe_read_kernel_str(e->path, PATH_LEN, &k->data[1]);
		return 0;
	}
	count(STAT_FILTERED);
	count(STAT_FILTERED_PATH);
	return 1;
}

// Copies a task's comm (16 bytes, NUL-terminated by the kernel) with two direct loads: the task
// pointers of a tp_btf program are BTF pointers, so no bpf_probe_read_kernel_str per ancestor.
// `dst` is 8-byte aligned in struct event.
static __always_inline void comm_copy(char *dst, struct task_struct *t)
{
	const __u64 *src = (const __u64 *)t->comm;
	((__u64 *)dst)[0] = src[0];
	((__u64 *)dst)[1] = src[1];
}

// The slot in force when the rules in it can match syscall `nr`, else -1: every syscall asks
// this first, and most stop here (one inlined array lookup, no helper call).
static __always_inline int gate_slot(__u32 nr, __u32 *agent)
{
	__u32 zero = 0;
	if (nr >= MAX_SYSCALL)
		return -1;
	struct gate *g = bpf_map_lookup_elem(&gate, &zero);
	if (!g)
		return -1;
	__u32 slot = g->slot & 1;
	if (!((g->keep[nr] >> slot) & 1))
		return -1;
	*agent = g->agent_tgid;
	return slot;
}

// A syscall the rules can match; not inlined, so the gate's path stays short (fewer registers
// saved and restored by the program that every syscall runs).
static __noinline int enter_kept(struct pt_regs *regs, __u32 nr, __u32 slot, __u32 agent)
{
	__u32 zero = 0;
	__u32 key = slot * MAX_SYSCALL + nr;
	struct syscall_cfg *cfg = bpf_map_lookup_elem(&syscalls, &key);
	if (!cfg || !cfg->keep)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	if (agent == (__u32)(id >> 32))
		return 0; // the agent's own reads of /proc would feed back
	count(STAT_SEEN);
	// The cgroup scope first: it needs no argument read.
	struct scope *sc = bpf_map_lookup_elem(&scopes, &slot);
	__u64 groups = cgroup_pass(sc, cfg->groups, slot);
	if (!groups) {
		count(STAT_FILTERED);
		count(STAT_FILTERED_CGROUP);
		return 0;
	}
	struct event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	e->path[0] = 0;
	e->path2[0] = 0;
	e->exe_name[0] = 0;
	e->argc = 0;
	e->how_flags = 0;
	e->nr = nr; // read_path_filtered needs it
	for (int i = 0; i < 6; i++)
		e->args[i] = arg(regs, i);
	if (nr == 437) { // openat2(dirfd, path, struct open_how *how, size)
		__u64 how = 0;
		bpf_probe_read_user(&how, sizeof(how), (const void *)e->args[2]);
		e->how_flags = (__u32)how;
	}
	groups = flags_pass(cfg, sc, groups, e);
	if (!groups) {
		count(STAT_FILTERED);
		count(STAT_FILTERED_FLAGS);
		return 0;
	}
	if (cfg->path_idx < 6 && read_path_filtered(cfg, groups, e, slot))
		return 0;
	if (cfg->path2_idx < 6)
		bpf_probe_read_user_str(e->path2, PATH_LEN,
					(const char *)e->args[cfg->path2_idx & 7]);
	if (cfg->addr_idx < 5) {
		__u64 len = e->args[(cfg->addr_idx + 1) & 7];
		__builtin_memset(e->addr, 0, sizeof(e->addr));
		if (len > sizeof(e->addr))
			len = sizeof(e->addr);
		bpf_probe_read_user(e->addr, len & 31, (const void *)e->args[cfg->addr_idx & 7]);
	}
	if (cfg->argv_idx < 6) {
		const char *const *argv = (const char *const *)e->args[cfg->argv_idx & 7];
		for (int i = 0; i < ARGV_N; i++) {
			const char *a = 0;
			if (bpf_probe_read_user(&a, sizeof(a), &argv[i]) || !a)
				break;
			bpf_probe_read_user_str(e->argv[i], ARGV_LEN, a);
			e->argc = i + 1;
		}
	}
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 ug = bpf_get_current_uid_gid();
	e->ts = bpf_ktime_get_boot_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->uid = (__u32)ug;
	e->gid = ug >> 32;
	e->ret = 0;
	// The process's name (its main thread's), as rules mean it: not a worker thread's.
	comm_copy(e->comm, t->group_leader);
	struct task_struct *p = t->real_parent;
	e->ppid = p->tgid;
	for (int i = 0; i < ANC_N; i++) {
		if (!p) {
			e->anc_pid[i] = 0;
			e->anc_comm[i][0] = 0;
			continue;
		}
		e->anc_pid[i] = p->tgid;
		// The process's name, not the forking thread's (e.g. tokio-runtime-w).
		comm_copy(e->anc_comm[i], p->group_leader);
		struct task_struct *pp = p->real_parent;
		p = (pp == p || e->anc_pid[i] <= 1) ? 0 : pp;
	}
	if (bpf_map_update_elem(&pending, &id, e, BPF_ANY)) {
		count(STAT_PENDING_FULL);
		return 0;
	}
	__u8 *flag = bpf_task_storage_get(&has_pending, bpf_get_current_task_btf(), 0,
					  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (flag)
		*flag = 1;
	else if (!bpf_map_delete_elem(&pending, &id)) // sys_exit would not look at it
		count(STAT_PENDING_FULL);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(audit_sys_enter, struct pt_regs *regs, long id)
{
	__u32 agent = 0;
	int slot = gate_slot((__u32)id, &agent);
	return slot < 0 ? 0 : enter_kept(regs, (__u32)id, slot, agent);
}

static __noinline int exit_kept(__u32 nr, __u32 slot, long ret)
{
	__u32 key = slot * MAX_SYSCALL + nr;
	struct syscall_cfg *cfg = bpf_map_lookup_elem(&syscalls, &key);
	if (!cfg || !cfg->keep)
		return 0;
	__u8 *flag = bpf_task_storage_get(&has_pending, bpf_get_current_task_btf(), 0, 0);
	if (!flag || !*flag)
		return 0; // dropped at sys_enter (or not seen): nothing pending
	*flag = 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct event *e = bpf_map_lookup_elem(&pending, &id);
	if (!e)
		return 0;
	e->ret = ret;
	if (cfg->path_idx < 6 && e->path[0] == 0 && e->nr != 59 && e->nr != 322) {
		struct scope *sc = bpf_map_lookup_elem(&scopes, &slot);
		__u64 groups = flags_pass(cfg, sc, cgroup_pass(sc, cfg->groups, slot), e);
		if (read_path_filtered(cfg, groups, e, slot)) {
			bpf_map_delete_elem(&pending, &id);
			return 0;
		}
	}
	if (bpf_ringbuf_output(&events, e, sizeof(*e), 0))
		count(STAT_LOST);
	else
		count(STAT_SENT);
	bpf_map_delete_elem(&pending, &id);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(audit_sys_exit, struct pt_regs *regs, long ret)
{
	__u32 nr = (__u32)regs->orig_ax, agent = 0;
	int slot = gate_slot(nr, &agent);
	return slot < 0 ? 0 : exit_kept(nr, slot, ret);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(audit_exec, struct task_struct *task, int old_pid, struct linux_binprm *bprm)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct event *e = bpf_map_lookup_elem(&pending, &id);
	if (!e) {
		// A multi-threaded exec's pending entry is under the old thread id: move it.
		__u64 old = ((__u64)(id >> 32) << 32) | (__u32)old_pid;
		e = bpf_map_lookup_elem(&pending, &old);
		if (!e || bpf_map_update_elem(&pending, &id, e, BPF_ANY))
			return 0;
		bpf_map_delete_elem(&pending, &old);
		e = bpf_map_lookup_elem(&pending, &id);
		if (!e)
			return 0;
	}
	const unsigned char *name = BPF_CORE_READ(bprm, file, f_path.dentry, d_name.name);
	bpf_probe_read_kernel_str(e->exe_name, sizeof(e->exe_name), name);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(audit_exit, struct task_struct *task)
{
	__u64 id = bpf_get_current_pid_tgid();
	bpf_map_delete_elem(&pending, &id);
	return 0;
}
