// SPDX-License-Identifier: GPL-2.0
// camblet-agent runtime guard: per-workload mandatory access control on BPF LSM hooks.
//
// Which rule set applies to the current task:
//   1. its task storage (`task_rules`): set by the agent through a pidfd for processes selected
//      by process labels, copied to children in lsm/task_alloc, kept across exec; or bound at
//      exec in-kernel when the new executable's path is in the exec-binding space (rule set 0 of
//      the path tables), so an exe-selected workload is confined from its first instruction;
//   2. else the deepest ancestor cgroup listed in `cgroup_rules` (containers, systemd units).
// Rule set 0 means unconfined. The fast path: `config` says which R_* bits some active rule set
// has (`config.rules`), so a hook no rule uses returns after one array load; else the task
// storage is looked up only while some active rule set can be in it (CFG_TASK_RULES), then the
// cgroup levels the agent marked as used in `config.cgroup_levels`, each only when its id's bit
// is set in `cgroup_filter` (an unkeyed cgroup usually costs no hash lookup). The agent widens
// these summaries before a rule or key needs them and narrows them only after
// (driver/bpf/guard_config.ts).
//
// Paths: bpf_d_path of the opened/executed file (canonical: symlinks resolved by the kernel)
// is written straight into an LPM-trie key (`path_lpm`: rule set id, then the path bytes): one
// lookup finds the longest matching entry, an exact path (stored with its NUL) or a directory
// prefix (stored with its trailing '/'). Only the longest match is returned, so the agent stores
// in each entry the OR of its own flags and those of every shorter entry of the same rule set
// that it starts with (and the nearest exec binding). A path too long for a key (more than
// LPM_PATH - 1 bytes) is walked instead: FNV-1a 64 over its first MAX_PATH bytes, the hash of
// every prefix ending in '/' and of the whole path looked up in `paths` (the same entries,
// unpropagated). The d_path buffer is PATH_MAX long, so a deep path below a denied prefix is
// still judged. A confined open of a one-link regular file caches its path's flags in the
// inode's storage (`open_cache`, see guard_open), so a repeated open skips bpf_d_path. The
// programs are not sleepable: bpf_d_path only needs a hook from the sleepable
// set, and non-sleepable trampolines cost less on every open and exec.
// Every denial, and every would-deny of an audit-mode rule set, goes to `events` (a ring
// buffer); a full ring buffer is counted in `stats[STAT_LOST]`.
//
// Build: driver/bpf/build.ts (clang -target bpf). Kernel: 6.1+ with bpf in the active LSM list.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define EPERM 1
#define MAX_PATH 256 /* rule paths are shorter; events carry this much of a path */
#define PATH_BUF 4096 /* PATH_MAX: bpf_d_path fails on a path longer than its buffer */
#define LPM_PATH 252  /* path bytes in a `path_lpm` key: 256 bytes of data less the rule set id */
#define MAX_RULESETS 1024
#define MAX_CGROUP_LEVEL 16

// Only the fields read here; CO-RE relocates them against the running kernel's BTF.
struct path {
	void *mnt;
	struct dentry *dentry;
} __attribute__((preserve_access_index));
struct inode {
	unsigned short i_mode;
	unsigned int i_nlink;
} __attribute__((preserve_access_index));
struct dentry {
	unsigned int d_flags;
	struct dentry *d_parent;
} __attribute__((preserve_access_index));
struct file {
	struct path f_path;
	struct inode *f_inode;
	unsigned int f_mode;
} __attribute__((preserve_access_index));
struct fs_struct {
	struct path root;
} __attribute__((preserve_access_index));
struct linux_binprm {
	struct file *file;
} __attribute__((preserve_access_index));
struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct fs_struct *fs;
} __attribute__((preserve_access_index));
typedef struct {
	unsigned int val;
} kuid_t;
struct cred {
	kuid_t uid;
	kuid_t euid;
} __attribute__((preserve_access_index));

#define FMODE_READ 0x1
#define FMODE_WRITE 0x2
#define FMODE_NOACCOUNT 0x20000000 /* overlayfs' inner open of the real file: seen already */
#define S_IFMT 00170000
#define S_IFREG 0100000
#define DCACHE_OP_REVALIDATE 0x4 /* kernfs, network and stacked file systems: names change unseen */
#define PTRACE_MODE_ATTACH 0x02
#define SOCK_RAW 3
#define SOCK_PACKET 10
#define AF_PACKET 17

// Rule set flags (struct ruleset.flags): what is denied.
#define R_ACTIVE (1u << 0)
#define R_EXEC_ALLOWLIST (1u << 1) /* exec only what an exec-allow path matches */
#define R_PTRACE (1u << 2)
#define R_SYSLOG (1u << 3)
#define R_MOUNT (1u << 4)
#define R_MODULE (1u << 5)
#define R_BPF (1u << 6)
#define R_RAW_SOCKET (1u << 7)
#define R_SETUID_ROOT (1u << 8)
#define R_READ_PATHS (1u << 9)   /* some entry denies reading: opens for reading look paths up */
#define R_WRITE_PATHS (1u << 10) /* some entry denies writing: opens for writing look paths up */
#define R_EXEC_PATHS (1u << 11)  /* some entry names an executable: execs look paths up */
#define R_AUDIT (1u << 31)  /* report, do not deny */

// Path entry flags (struct path_val.flags).
#define P_EXEC_DENY (1u << 0)
#define P_EXEC_ALLOW (1u << 1)
#define P_READ_DENY (1u << 2)
#define P_WRITE_DENY (1u << 3)

// Config flags.
#define CFG_BIND_EXEC (1u << 0) /* `paths` ruleset 0 binds executables to rule sets */
/* The open verdict cache may be used: set by the agent on x86-64 only, whose ordering the
 * cache's lock-free seqcount read relies on (a weakly ordered CPU could see a torn entry). */
#define CFG_OPEN_CACHE (1u << 1)
/* Some task may carry an active rule set in `task_rules` (set by the agent, bound at exec or
 * inherited): without it no task storage is looked up. */
#define CFG_TASK_RULES (1u << 2)

// Event hooks (struct event.hook); the agent names them.
enum hook {
	HOOK_EXEC = 1,
	HOOK_OPEN,
	HOOK_PTRACE,
	HOOK_TRACEME,
	HOOK_SYSLOG,
	HOOK_MOUNT,
	HOOK_UMOUNT,
	HOOK_MOVE_MOUNT,
	HOOK_KERNEL_READ,
	HOOK_KERNEL_LOAD,
	HOOK_MODULE_REQUEST,
	HOOK_BPF,
	HOOK_SOCKET,
	HOOK_SETUID,
	HOOK_BIND, /* notice: an exec bound a rule set (not a denial) */
};

enum outcome {
	OUT_DENIED = 1,
	OUT_AUDITED = 2,
	OUT_NOTICE = 3,
};

enum stat {
	STAT_DENIED = 0,
	STAT_AUDITED,
	STAT_LOST,
	STAT_BOUND,
	STAT_CACHE_HIT, /* opens judged from the verdict cache, without d_path */
	STAT_MAX,
};

struct config {
	__u32 agent_tgid;    /* never confined */
	__u32 flags;         /* CFG_* */
	__u32 cgroup_levels; /* bit n: some cgroup_rules key is at cgroup level n */
	__u32 rules;         /* R_* of every active rule set, OR-ed: a hook none uses returns at once */
};

struct ruleset {
	__u32 flags; /* R_* */
	__u32 generation;
};

struct path_key {
	__u32 ruleset;
	__u32 len; /* bytes hashed; high bit set = the whole path (exact), else a prefix */
	__u64 hash;
};

/* `path_lpm` key: prefixlen counts bits of ruleset + path (an exact path with its NUL). */
struct lpm_key {
	__u32 prefixlen;
	__u32 ruleset;
	char path[LPM_PATH];
};

struct path_val {
	__u32 flags; /* P_* */
	__u32 bind;  /* exec-binding space: rule set to bind at exec */
};

struct task_rule {
	__u32 ruleset;
	__u32 origin; /* 1 agent, 2 inherited, 3 bound at exec */
};

struct event {
	__u64 ts_ns;
	__u64 cgroup_id;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 ruleset;
	__u32 hook;
	__u32 outcome;
	__u32 rule;  /* the R_* or P_* bit that decided */
	__s32 arg;   /* hook-specific: target pid, syslog type, family, read id, bpf cmd, uid */
	__u32 ppid;  /* the parent's tgid: labels a child that is gone when the event is read */
	__u32 pad;
	char comm[16];
	char path[MAX_PATH]; /* file or executable; mount type; module name */
};

/* Per CPU; its head is a `path_lpm` key whose path is where bpf_d_path writes. */
struct scratch {
	__u32 prefixlen;
	__u32 ruleset;
	char path[PATH_BUF];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_RULESETS);
	__type(key, __u32);
	__type(value, struct ruleset);
} rulesets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u32);
} cgroup_rules SEC(".maps");

/* Bit (id % CGROUP_FILTER_BITS) set for every `cgroup_rules` key: clear = not keyed. */
#define CGROUP_FILTER_BITS 512
struct cgroup_filter {
	__u64 bits[CGROUP_FILTER_BITS / 64];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cgroup_filter);
} cgroup_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct path_key);
	__type(value, struct path_val);
} paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_key);
	__type(value, struct path_val);
} path_lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_rule);
} task_rules SEC(".maps");

/* The open verdict cache (see guard_open): one entry per inode, freed with the inode. */
struct open_cache {
	struct bpf_spin_lock lock; /* serialises writers: two opens of one inode store at once */
	__u32 seq;                 /* odd while a writer stores: readers copy without the lock */
	__u64 gen;        /* gens[GEN_HOOKS] when the path was read */
	__u64 rules;      /* gens[GEN_RULES] */
	__u32 rename_seq; /* rename_lock's sequence (even) */
	__u32 mount_seq;  /* mount_lock's sequence (even) */
	__u32 ruleset;
	__u32 flags; /* P_* found for the path */
	__u64 mnt, dentry, root_mnt, root_dentry;
};

struct {
	__uint(type, BPF_MAP_TYPE_INODE_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct open_cache);
} open_cache SEC(".maps");

/* Generations that invalidate every open_cache entry: GEN_HOOKS is bumped here by the hooks
 * that can give an inode another path or the task another root (link, unlink, rename, chroot,
 * mounts), GEN_RULES by the agent after every write of rule sets or path entries. */
enum gen { GEN_HOOKS = 0, GEN_RULES, GEN_MAX };
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, GEN_MAX);
	__type(key, __u32);
	__type(value, __u64);
} gens SEC(".maps");

/* The kernel's own path generations: every d_move and every mount-tree change is a write
 * section of these seqlocks (sequence first in seqlock_t). Unlike the LSM hooks, which run
 * before the change, a sequence moves when the change is made. */
extern const void rename_lock __ksym __weak;
extern const void mount_lock __ksym __weak; /* not in every kernel's kallsyms (6.18): */
/* unresolved, a sequence reads as odd (seq_of) and nothing is cached. */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&stats, &which);
	if (n)
		*n += 1;
}

static __always_inline void bump(void)
{
	__u32 k = GEN_HOOKS;
	__u64 *g = bpf_map_lookup_elem(&gens, &k);
	if (g)
		__sync_fetch_and_add(g, 1);
}

static __always_inline __u32 seq_of(const void *lock)
{
	__u32 v;
	/* Odd (a write section) when unresolved or unreadable: never cached. A failed read zeroes v. */
	if (!lock || bpf_probe_read_kernel(&v, sizeof(v), lock))
		return 1;
	return v;
}

static __always_inline struct config *cfg(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&config, &zero);
}

static __always_inline struct ruleset *ruleset_of(__u32 id)
{
	if (!id)
		return 0;
	struct ruleset *r = bpf_map_lookup_elem(&rulesets, &id);
	return r && (r->flags & R_ACTIVE) ? r : 0;
}

/* The rule set of the current task, 0 when unconfined. A task's own rule set wins while it is
 * active; an inactive one (its policy is gone) leaves the task to its cgroup. */
static __always_inline __u32 current_ruleset(struct config *c)
{
	if (c->flags & CFG_TASK_RULES) {
		struct task_struct *task = bpf_get_current_task_btf();
		struct task_rule *tr = bpf_task_storage_get(&task_rules, task, 0, 0);
		if (tr && tr->ruleset && ruleset_of(tr->ruleset))
			return tr->ruleset;
	}
	__u32 levels = c->cgroup_levels, found = 0, zero = 0;
	for (int level = 0; level < MAX_CGROUP_LEVEL; level++) {
		if (!(levels >> level))
			break; /* no keyed cgroup deeper */
		if (!(levels & (1u << level)))
			continue;
		__u64 id = bpf_get_current_ancestor_cgroup_id(level);
		if (!id)
			break;
		/* Looked up here, not before the loop: a task in the root cgroup never needs it. */
		struct cgroup_filter *f = bpf_map_lookup_elem(&cgroup_filter, &zero);
		__u32 b = id % CGROUP_FILTER_BITS;
		if (f && !(f->bits[b / 64] & (1ull << (b % 64))))
			continue; /* not keyed */
		__u32 *r = bpf_map_lookup_elem(&cgroup_rules, &id);
		if (r)
			found = *r; /* deeper levels win */
	}
	if (found && c->agent_tgid == (__u32)(bpf_get_current_pid_tgid() >> 32))
		return 0;
	return found;
}

static __always_inline void emit(__u32 ruleset, __u32 hook, __u32 outcome, __u32 rule, __s32 arg,
				 const char *path)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(STAT_LOST);
		return;
	}
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->ruleset = ruleset;
	e->hook = hook;
	e->outcome = outcome;
	e->rule = rule;
	e->arg = arg;
	struct task_struct *task = bpf_get_current_task_btf();
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (path)
		bpf_probe_read_kernel_str(e->path, sizeof(e->path), path);
	else
		e->path[0] = 0;
	bpf_ringbuf_submit(e, 0);
}

/* -EPERM (enforce) or 0 (audit), reporting either way. */
static __always_inline int verdict(__u32 id, struct ruleset *r, __u32 hook, __u32 rule, __s32 arg,
				   const char *path)
{
	if (r->flags & R_AUDIT) {
		count(STAT_AUDITED);
		emit(id, hook, OUT_AUDITED, rule, arg, path);
		return 0;
	}
	count(STAT_DENIED);
	emit(id, hook, OUT_DENIED, rule, arg, path);
	return -EPERM;
}

struct walk {
	struct scratch *s;
	__u64 hash;
	__u32 ruleset;
	__u32 flags; /* P_* of every matching entry, OR-ed */
	__u32 bind;
};

static __always_inline void match(struct walk *w, __u32 len)
{
	struct path_key k = { .ruleset = w->ruleset, .len = len, .hash = w->hash };
	struct path_val *v = bpf_map_lookup_elem(&paths, &k);
	if (v) {
		w->flags |= v->flags;
		if (v->bind)
			w->bind = v->bind;
	}
}

static long walk_step(__u32 i, void *ctx)
{
	struct walk *w = ctx;
	if (i >= MAX_PATH)
		return 1;
	unsigned char c = w->s->path[i];
	if (!c) {
		match(w, i | 0x80000000u);
		return 1;
	}
	w->hash ^= c;
	w->hash *= 0x100000001b3ULL;
	if (c == '/')
		match(w, i + 1);
	return 0;
}

/* The P_* flags (and exec binding) of rule set `ruleset` for the `n`-byte path (with its NUL)
 * that bpf_d_path left in `s`. */
static __always_inline void match_path(struct scratch *s, long n, __u32 ruleset, struct walk *w)
{
	w->flags = 0;
	w->bind = 0;
	if (n <= LPM_PATH) {
		s->prefixlen = 32 + 8 * (__u32)n;
		s->ruleset = ruleset;
		struct path_val *v = bpf_map_lookup_elem(&path_lpm, s);
		if (v) {
			w->flags = v->flags;
			w->bind = v->bind;
		}
		return;
	}
	/* Longer than a key: walk it (rule paths are shorter than MAX_PATH). */
	w->s = s;
	w->hash = 0xcbf29ce484222325ULL;
	w->ruleset = ruleset;
	bpf_loop(MAX_PATH, walk_step, w, 0);
}

/* d_path of `p` into scratch, then its flags in rule set `ruleset`; the path's length (with the
 * NUL) in *len. */
static __always_inline struct scratch *lookup_path(struct path *p, __u32 ruleset, struct walk *w,
						   long *len)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	long n = bpf_d_path(p, s->path, sizeof(s->path));
	if (n <= 0)
		return 0;
	*len = n;
	match_path(s, n, ruleset, w);
	return s;
}

static __always_inline void bind_task(__u32 id, __u32 origin)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_rule *tr = bpf_task_storage_get(&task_rules, task, 0,
						     BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (tr) {
		tr->ruleset = id;
		tr->origin = origin;
	}
}

SEC("lsm/bprm_check_security")
int BPF_PROG(guard_exec, struct linux_binprm *bprm, int ret)
{
	if (ret)
		return ret;
	struct config *c = cfg();
	if (!c || (!(c->flags & CFG_BIND_EXEC) && !(c->rules & (R_EXEC_PATHS | R_EXEC_ALLOWLIST))))
		return 0;
	__u32 id = current_ruleset(c);
	struct walk w = {};
	struct scratch *s = 0;
	long n = 0;
	if (!id) {
		if (!(c->flags & CFG_BIND_EXEC))
			return 0;
		s = lookup_path(&bprm->file->f_path, 0, &w, &n);
		if (!s || !w.bind || !ruleset_of(w.bind))
			return 0;
		/* Confined from here on; this exec itself is judged by the bound rules below. */
		bind_task(w.bind, 3);
		count(STAT_BOUND);
		emit(w.bind, HOOK_BIND, OUT_NOTICE, 0, 0, s->path);
		id = w.bind;
	}
	struct ruleset *r = ruleset_of(id);
	if (!r || !(r->flags & (R_EXEC_PATHS | R_EXEC_ALLOWLIST)))
		return 0;
	if (s)
		match_path(s, n, id, &w); /* the path is in scratch already */
	else
		s = lookup_path(&bprm->file->f_path, id, &w, &n);
	if (!s)
		return 0;
	if (w.flags & P_EXEC_DENY)
		return verdict(id, r, HOOK_EXEC, P_EXEC_DENY, 0, s->path);
	if ((r->flags & R_EXEC_ALLOWLIST) && !(w.flags & P_EXEC_ALLOW))
		return verdict(id, r, HOOK_EXEC, R_EXEC_ALLOWLIST, 0, s->path);
	return 0;
}

/* Whether `c` still holds the verdict of this open: see guard_open. */
static __always_inline int cache_hit(struct open_cache *e, struct file *file, __u32 id,
				     struct task_struct *task, __u64 *gen, __u64 *rules,
				     struct open_cache *c)
{
	if (!e)
		return 0;
	/* A seqcount read (x86-64 keeps loads and stores in order; the barriers keep clang's). */
	__u32 seq = *(volatile __u32 *)&e->seq;
	if (seq & 1)
		return 0;
	asm volatile("" ::: "memory");
	c->gen = e->gen;
	c->rules = e->rules;
	c->rename_seq = e->rename_seq;
	c->mount_seq = e->mount_seq;
	c->ruleset = e->ruleset;
	c->flags = e->flags;
	c->mnt = e->mnt;
	c->dentry = e->dentry;
	c->root_mnt = e->root_mnt;
	c->root_dentry = e->root_dentry;
	asm volatile("" ::: "memory");
	if (*(volatile __u32 *)&e->seq != seq)
		return 0;
	if (c->ruleset != id || c->gen != *gen || c->rules != *rules)
		return 0;
	struct dentry *d = file->f_path.dentry;
	if (c->mnt != (__u64)file->f_path.mnt || c->dentry != (__u64)d || d->d_parent == d)
		return 0;
	if (c->root_mnt != (__u64)task->fs->root.mnt ||
	    c->root_dentry != (__u64)task->fs->root.dentry)
		return 0;
	if (file->f_inode->i_nlink != 1)
		return 0;
	return c->rename_seq == seq_of(&rename_lock) && c->mount_seq == seq_of(&mount_lock);
}

/*
 * Verdict cache: bpf_d_path is most of an open's cost, so a confined open of a regular file
 * with one link remembers, in the inode's storage, the P_* flags its path had, with everything
 * that path depended on: the file's mount and dentry, the task's root (d_path is relative to
 * it), the rule set and rules generation, the hook generation and the kernel's rename and mount
 * sequences, all read before the path. An entry is used only when all still match and the
 * inode still has one link; a hard-linked inode, a disconnected dentry, a file system that
 * revalidates names, or a path read while a rename or mount was under way is never cached.
 */
SEC("lsm/file_open")
int BPF_PROG(guard_open, struct file *file, int ret)
{
	if (ret)
		return ret;
	struct config *cf = cfg();
	unsigned int mode = file->f_mode; /* a trusted BTF pointer: a plain load, no helper call */
	/* Only an open that some entry could deny needs the rule set, and then the path. */
	__u32 need = ((mode & FMODE_READ) ? R_READ_PATHS : 0) | ((mode & FMODE_WRITE) ? R_WRITE_PATHS : 0);
	if (!cf || !(cf->rules & need) || (mode & FMODE_NOACCOUNT))
		return 0;
	__u32 id = current_ruleset(cf);
	struct ruleset *r = ruleset_of(id);
	if (!r || !(r->flags & need))
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 k = GEN_HOOKS;
	__u64 *gp = bpf_map_lookup_elem(&gens, &k);
	k = GEN_RULES;
	__u64 *rp = bpf_map_lookup_elem(&gens, &k);
	if (!gp || !rp)
		return 0;
	__u64 gen = *gp, rules = *rp;
	struct inode *inode = file->f_inode;
	struct dentry *dentry = file->f_path.dentry;
	struct walk w = {};
	long n = 0;
	struct scratch *s = 0;
	int use_cache = cf->flags & CFG_OPEN_CACHE;
	struct open_cache *c = use_cache ? bpf_inode_storage_get(&open_cache, inode, 0, 0) : 0, copy;
	if (cache_hit(c, file, id, task, &gen, &rules, &copy)) {
		w.flags = copy.flags;
		count(STAT_CACHE_HIT);
	} else {
		__u32 rs = seq_of(&rename_lock), ms = seq_of(&mount_lock);
		void *root_mnt = task->fs->root.mnt, *root_dentry = task->fs->root.dentry;
		int cacheable = use_cache && (inode->i_mode & S_IFMT) == S_IFREG && inode->i_nlink == 1 &&
				!(dentry->d_flags & DCACHE_OP_REVALIDATE) &&
				dentry->d_parent != dentry && !((rs | ms) & 1);
		s = lookup_path(&file->f_path, id, &w, &n);
		if (!s)
			return 0;
		if (cacheable && root_mnt == task->fs->root.mnt &&
		    root_dentry == task->fs->root.dentry) {
			void *fmnt = file->f_path.mnt; /* no BTF loads under the lock */
			c = bpf_inode_storage_get(&open_cache, inode, 0,
						  BPF_LOCAL_STORAGE_GET_F_CREATE);
			if (c) {
				bpf_spin_lock(&c->lock);
				c->seq++;
				asm volatile("" ::: "memory");
				c->gen = gen;
				c->rules = rules;
				c->rename_seq = rs;
				c->mount_seq = ms;
				c->ruleset = id;
				c->flags = w.flags;
				c->mnt = (__u64)fmnt;
				c->dentry = (__u64)dentry;
				c->root_mnt = (__u64)root_mnt;
				c->root_dentry = (__u64)root_dentry;
				asm volatile("" ::: "memory");
				c->seq++;
				bpf_spin_unlock(&c->lock);
			}
		}
	}
	__u32 deny = 0;
	if ((mode & FMODE_READ) && (w.flags & P_READ_DENY))
		deny = P_READ_DENY;
	else if ((mode & FMODE_WRITE) && (w.flags & P_WRITE_DENY))
		deny = P_WRITE_DENY;
	if (!deny)
		return 0;
	if (!s) {
		/* A cached deny: the event still carries the path. */
		s = lookup_path(&file->f_path, id, &w, &n);
		if (!s)
			return verdict(id, r, HOOK_OPEN, deny, (int)mode, 0);
	}
	return verdict(id, r, HOOK_OPEN, deny, (int)mode, s->path);
}

/* Shared by the hooks that deny a whole capability: returns the verdict or 0. */
static __always_inline int simple(__u32 bit, __u32 hook, __s32 arg, const char *path)
{
	struct config *c = cfg();
	if (!c || !(c->rules & bit))
		return 0;
	__u32 id = current_ruleset(c);
	struct ruleset *r = ruleset_of(id);
	if (!r || !(r->flags & bit))
		return 0;
	return verdict(id, r, hook, bit, arg, path);
}

SEC("lsm/ptrace_access_check")
int BPF_PROG(guard_ptrace, struct task_struct *child, unsigned int mode, int ret)
{
	if (ret)
		return ret;
	if (!(mode & PTRACE_MODE_ATTACH))
		return 0; /* /proc reads for ps and friends */
	int tgid = BPF_CORE_READ(child, tgid);
	if ((__u32)tgid == (__u32)(bpf_get_current_pid_tgid() >> 32))
		return 0;
	return simple(R_PTRACE, HOOK_PTRACE, tgid, 0);
}

SEC("lsm/ptrace_traceme")
int BPF_PROG(guard_traceme, struct task_struct *parent, int ret)
{
	if (ret)
		return ret;
	return simple(R_PTRACE, HOOK_TRACEME, BPF_CORE_READ(parent, tgid), 0);
}

SEC("lsm/syslog")
int BPF_PROG(guard_syslog, int type, int ret)
{
	if (ret)
		return ret;
	return simple(R_SYSLOG, HOOK_SYSLOG, type, 0);
}

SEC("lsm/sb_mount")
int BPF_PROG(guard_mount, const char *dev_name, const struct path *path, const char *type,
	     unsigned long flags, void *data, int ret)
{
	bump();
	if (ret)
		return ret;
	return simple(R_MOUNT, HOOK_MOUNT, (int)flags, type);
}

SEC("lsm/sb_umount")
int BPF_PROG(guard_umount, void *mnt, int flags, int ret)
{
	bump();
	if (ret)
		return ret;
	return simple(R_MOUNT, HOOK_UMOUNT, flags, 0);
}

SEC("lsm/move_mount")
int BPF_PROG(guard_move_mount, const struct path *from, const struct path *to, int ret)
{
	bump();
	if (ret)
		return ret;
	return simple(R_MOUNT, HOOK_MOVE_MOUNT, 0, 0);
}

SEC("lsm/kernel_read_file")
int BPF_PROG(guard_kernel_read, struct file *file, int id, int contents, int ret)
{
	if (ret)
		return ret;
	return simple(R_MODULE, HOOK_KERNEL_READ, id, 0);
}

SEC("lsm/kernel_load_data")
int BPF_PROG(guard_kernel_load, int id, int contents, int ret)
{
	if (ret)
		return ret;
	return simple(R_MODULE, HOOK_KERNEL_LOAD, id, 0);
}

SEC("lsm/kernel_module_request")
int BPF_PROG(guard_module_request, char *kmod_name, int ret)
{
	if (ret)
		return ret;
	return simple(R_MODULE, HOOK_MODULE_REQUEST, 0, kmod_name);
}

SEC("lsm/bpf")
int BPF_PROG(guard_bpf, int cmd, void *attr, unsigned int size, int ret)
{
	if (ret)
		return ret;
	return simple(R_BPF, HOOK_BPF, cmd, 0);
}

SEC("lsm/socket_create")
int BPF_PROG(guard_socket, int family, int type, int protocol, int kern, int ret)
{
	if (ret || kern)
		return ret;
	int t = type & 0xf;
	if (t != SOCK_RAW && t != SOCK_PACKET && family != AF_PACKET)
		return 0;
	return simple(R_RAW_SOCKET, HOOK_SOCKET, family, 0);
}

SEC("lsm/task_fix_setuid")
int BPF_PROG(guard_setuid, struct cred *new, const struct cred *old, int flags, int ret)
{
	if (ret)
		return ret;
	unsigned int nu = BPF_CORE_READ(new, uid.val), ne = BPF_CORE_READ(new, euid.val);
	unsigned int ou = BPF_CORE_READ(old, uid.val), oe = BPF_CORE_READ(old, euid.val);
	if (!((nu == 0 && ou != 0) || (ne == 0 && oe != 0)))
		return 0;
	return simple(R_SETUID_ROOT, HOOK_SETUID, 0, 0);
}

/* Hooks that only invalidate the open verdict cache (before the change: the kernel's rename
 * and mount sequences cover a change made after an open read them). */
SEC("lsm/inode_link")
int BPF_PROG(guard_link, struct dentry *old_dentry, struct inode *dir, struct dentry *new_dentry,
	     int ret)
{
	bump();
	return ret;
}

SEC("lsm/inode_unlink")
int BPF_PROG(guard_unlink, struct inode *dir, struct dentry *dentry, int ret)
{
	bump();
	return ret;
}

SEC("lsm/inode_rename")
int BPF_PROG(guard_rename, struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir,
	     struct dentry *new_dentry, int ret)
{
	bump();
	return ret;
}

SEC("lsm/path_chroot")
int BPF_PROG(guard_chroot, const struct path *path, int ret)
{
	bump();
	return ret;
}

SEC("lsm/sb_pivotroot")
int BPF_PROG(guard_pivotroot, const struct path *old_path, const struct path *new_path, int ret)
{
	bump();
	return ret;
}

/* Task storage is not inherited: children get their parent's rule set here. */
SEC("lsm/task_alloc")
int BPF_PROG(guard_task_alloc, struct task_struct *task, unsigned long clone_flags, int ret)
{
	if (ret)
		return ret;
	struct task_struct *parent = bpf_get_current_task_btf();
	struct task_rule *pr = bpf_task_storage_get(&task_rules, parent, 0, 0);
	if (!pr || !pr->ruleset)
		return 0;
	struct task_rule *cr = bpf_task_storage_get(&task_rules, task, 0,
						     BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (cr) {
		cr->ruleset = pr->ruleset;
		cr->origin = 2;
	}
	return 0;
}
