/**
 * The syscall audit's kernel ABI: the x86_64 syscalls it can capture (which argument is a path,
 * a sockaddr, argv), the `syscall_cfg` and LPM key encodings, and the event decoder. Must match
 * `audit.bpf.c`.
 *
 * @module
 */

/** No such argument (audit.bpf.c NO_ARG). */
export const NO_ARG = 7;

/** How one syscall's arguments are captured. */
export interface SyscallSpec {
  nr: number;
  /** Argument index of a path string. */
  path?: number;
  /** Argument index of a second path (rename's new name). */
  path2?: number;
  /** Argument index of a sockaddr (its length follows). */
  addr?: number;
  /** Argument index of argv. */
  argv?: number;
  /** Argument index of open flags ({@linkcode HOW_ARG}: openat2's `open_how.flags`). */
  flags?: number;
}

/** `flags` of openat2: read from its `struct open_how` (audit.bpf.c HOW_ARG). */
export const HOW_ARG = 8;

/** The capturable syscalls by name (x86_64 numbers). */
export const SYSCALLS: ReadonlyMap<string, SyscallSpec> = new Map<string, SyscallSpec>([
  ["execve", { nr: 59, path: 0, argv: 1 }],
  ["execveat", { nr: 322, path: 1, argv: 2 }],
  ["open", { nr: 2, path: 0, flags: 1 }],
  ["openat", { nr: 257, path: 1, flags: 2 }],
  ["openat2", { nr: 437, path: 1, flags: HOW_ARG }],
  ["connect", { nr: 42, addr: 1 }],
  ["bind", { nr: 49, addr: 1 }],
  ["listen", { nr: 50 }],
  ["accept", { nr: 43 }],
  ["accept4", { nr: 288 }],
  ["ptrace", { nr: 101 }],
  ["setuid", { nr: 105 }],
  ["setgid", { nr: 106 }],
  ["setreuid", { nr: 113 }],
  ["setregid", { nr: 114 }],
  ["setresuid", { nr: 117 }],
  ["setresgid", { nr: 119 }],
  ["mount", { nr: 165, path: 1 }],
  ["umount2", { nr: 166, path: 0 }],
  ["unlink", { nr: 87, path: 0 }],
  ["unlinkat", { nr: 263, path: 1 }],
  ["rename", { nr: 82, path: 0, path2: 1 }],
  ["renameat", { nr: 264, path: 1, path2: 3 }],
  ["renameat2", { nr: 316, path: 1, path2: 3 }],
  ["chmod", { nr: 90, path: 0 }],
  ["fchmodat", { nr: 268, path: 1 }],
  ["fchmod", { nr: 91 }],
  ["chown", { nr: 92, path: 0 }],
  ["fchownat", { nr: 260, path: 1 }],
  ["truncate", { nr: 76, path: 0 }],
  ["init_module", { nr: 175 }],
  ["finit_module", { nr: 313 }],
  ["memfd_create", { nr: 319, path: 0 }],
]);

/** Syscall name by number. */
export const SYSCALL_NAMES: ReadonlyMap<number, string> = new Map(
  [...SYSCALLS].map(([name, s]) => [s.nr, name]),
);

/** Sizes and offsets of `struct event` (audit.bpf.c). */
export const EVENT = {
  size: 1360,
  ts: 0,
  cgroupId: 8,
  ret: 16,
  args: 24,
  ids: 72, // pid, tid, ppid, uid, gid, nr
  argc: 96,
  howFlags: 100,
  comm: 104,
  ancPid: 120,
  ancComm: 144,
  path: 240,
  path2: 496,
  exeName: 752,
  addr: 816,
  argv: 848,
} as const;
export const ANC_N = 6;
export const PATH_LEN = 256;

/** Filter slots (audit.bpf.c double-buffers the prefilter) and syscalls per slot. */
export const SLOTS = 2;
export const MAX_SYSCALL = 512;
/** Filter groups one slot holds (bits of a u64). */
export const MAX_GROUPS = 64;
/** Size of `struct syscall_cfg`. */
export const SYSCALL_CFG_SIZE = 24;

/**
 * `struct syscall_cfg` for `spec`: `groups` are the filter groups naming it, `anyPath` those of
 * them that take any path (a syscall without a path argument: all of them). `null`: not traced.
 */
export function syscallCfg(
  spec: SyscallSpec,
  groups: bigint,
  anyPath: bigint,
): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(SYSCALL_CFG_SIZE);
  if (groups === 0n) return b;
  b.set([
    1,
    spec.path ?? NO_ARG,
    spec.path2 ?? NO_ARG,
    spec.addr ?? NO_ARG,
    spec.argv ?? NO_ARG,
    spec.flags ?? NO_ARG,
  ]);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(8, groups, true);
  dv.setBigUint64(16, spec.path === undefined ? groups : anyPath & groups, true);
  return b;
}

/** The `syscalls` map key of syscall `nr` in `slot`. */
export function syscallKey(slot: number, nr: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, slot * MAX_SYSCALL + nr, true);
  return b;
}

/** Longest prefix the LPM key holds after its slot byte. */
export const PREFIX_MAX = PATH_LEN - 2;

/** The LPM trie key of a path prefix in `slot` (slot byte + bytes, prefix length in bits). */
export function prefixKey(prefix: string, slot = 0): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(prefix);
  if (bytes.length === 0 || bytes.length > PREFIX_MAX) {
    throw new RangeError(
      `Cannot use path prefix "${prefix}" in the audit prefilter: it must be 1..${PREFIX_MAX} bytes`,
    );
  }
  const key = new Uint8Array(4 + PATH_LEN);
  new DataView(key.buffer).setUint32(0, (1 + bytes.length) * 8, true);
  key[4] = slot;
  key.set(bytes, 5);
  return key;
}

/**
 * `struct scope`: the groups taking every cgroup, those taking container cgroups, and those
 * taking only opens for writing.
 */
export function scopeValue(
  unscoped: bigint,
  containers: bigint,
  writes: bigint,
): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(24);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(0, unscoped, true);
  dv.setBigUint64(8, containers, true);
  dv.setBigUint64(16, writes, true);
  return b;
}

/** A u64 map key or value (cgroup ids, group masks), little-endian. */
export function u64(v: bigint): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

/** One captured syscall, decoded. */
export interface RawAuditEvent {
  /** CLOCK_BOOTTIME ns. */
  ts: bigint;
  cgroupId: bigint;
  syscall: string;
  nr: number;
  ret: number;
  args: bigint[];
  pid: number;
  tid: number;
  ppid: number;
  uid: number;
  gid: number;
  comm: string;
  /** Nearest first: parent, grandparent, … (pid and comm from the kernel at the call). */
  ancestors: { pid: number; comm: string }[];
  path: string;
  path2: string;
  /** The executed file's dentry name (execve), e.g. `memfd:x (deleted)` → `memfd:x`. */
  exeName: string;
  /** Address family and address for connect/bind. */
  addr?: { family: number; ip: string; port: number } | undefined;
  argv: string[];
  /** openat2's open_how.flags (low 32 bits), else 0. */
  howFlags: number;
}

const dec = new TextDecoder();
function cstring(b: Uint8Array, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const end = s.indexOf(0);
  return dec.decode(end < 0 ? s : s.subarray(0, end));
}

function sockaddr(b: Uint8Array): RawAuditEvent["addr"] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const family = dv.getUint16(0, true);
  if (family === 2) {
    return { family, ip: [...b.subarray(4, 8)].join("."), port: dv.getUint16(2, false) };
  }
  if (family === 10) {
    const parts: string[] = [];
    for (let i = 0; i < 8; i++) parts.push(dv.getUint16(8 + 2 * i, false).toString(16));
    return { family, ip: parts.join(":"), port: dv.getUint16(2, false) };
  }
  return family === 0 ? undefined : { family, ip: "", port: 0 };
}

/** Decodes one ring-buffer sample; throws naming the size when it is not an event. */
export function decodeAuditEvent(b: Uint8Array): RawAuditEvent {
  if (b.length < EVENT.size) {
    throw new RangeError(
      `Cannot decode an audit event of ${b.length} bytes (${EVENT.size} expected)`,
    );
  }
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const id = (i: number) => dv.getUint32(EVENT.ids + 4 * i, true);
  const nr = id(5);
  const ancestors: RawAuditEvent["ancestors"] = [];
  for (let i = 0; i < ANC_N; i++) {
    const pid = dv.getUint32(EVENT.ancPid + 4 * i, true);
    if (pid === 0) break;
    ancestors.push({ pid, comm: cstring(b, EVENT.ancComm + 16 * i, 16) });
  }
  const argc = Math.min(dv.getUint32(EVENT.argc, true), 8);
  const argv: string[] = [];
  for (let i = 0; i < argc; i++) argv.push(cstring(b, EVENT.argv + 64 * i, 64));
  const args: bigint[] = [];
  for (let i = 0; i < 6; i++) args.push(dv.getBigUint64(EVENT.args + 8 * i, true));
  const spec = SYSCALLS.get(SYSCALL_NAMES.get(nr) ?? "");
  return {
    ts: dv.getBigUint64(EVENT.ts, true),
    cgroupId: dv.getBigUint64(EVENT.cgroupId, true),
    syscall: SYSCALL_NAMES.get(nr) ?? `syscall_${nr}`,
    nr,
    ret: Number(dv.getBigInt64(EVENT.ret, true)),
    args,
    pid: id(0),
    tid: id(1),
    ppid: id(2),
    uid: id(3),
    gid: id(4),
    comm: cstring(b, EVENT.comm, 16),
    ancestors,
    path: spec?.path !== undefined ? cstring(b, EVENT.path, PATH_LEN) : "",
    path2: spec?.path2 !== undefined ? cstring(b, EVENT.path2, PATH_LEN) : "",
    exeName: cstring(b, EVENT.exeName, 64),
    addr: spec?.addr !== undefined ? sockaddr(b.subarray(EVENT.addr, EVENT.addr + 32)) : undefined,
    argv,
    howFlags: dv.getUint32(EVENT.howFlags, true),
  };
}
