/**
 * The byte layout shared with `guard.bpf.c`: map keys and values, flags, the event record, the
 * `path_lpm` table (each entry carrying what its shorter matches would add: the trie returns only
 * the longest) and the FNV-1a path hash of the long-path walk. Pure; kept in step with the C
 * structs by `guard_layout_test.ts` and by the guest tests that load the real object.
 *
 * @module
 */

/** `struct ruleset.flags`: what a rule set denies. */
export const R = {
  ACTIVE: 1 << 0,
  EXEC_ALLOWLIST: 1 << 1,
  PTRACE: 1 << 2,
  SYSLOG: 1 << 3,
  MOUNT: 1 << 4,
  MODULE: 1 << 5,
  BPF: 1 << 6,
  RAW_SOCKET: 1 << 7,
  SETUID_ROOT: 1 << 8,
  /** Some path entry denies reading (opens for reading look their path up). */
  READ_PATHS: 1 << 9,
  /** Some path entry denies writing. */
  WRITE_PATHS: 1 << 10,
  /** Some path entry names an executable (allowed or denied). */
  EXEC_PATHS: 1 << 11,
  AUDIT: 2 ** 31,
} as const;

/** `struct path_val.flags`. */
export const P = {
  EXEC_DENY: 1 << 0,
  EXEC_ALLOW: 1 << 1,
  READ_DENY: 1 << 2,
  WRITE_DENY: 1 << 3,
} as const;

/** `struct config.flags`. */
export const CFG_BIND_EXEC = 1;
/** The open verdict cache may be used (x86-64 only: its lock-free read relies on x86 ordering). */
export const CFG_OPEN_CACHE = 2;
/** Some task may carry an active rule set in task storage: only then is it looked up. */
export const CFG_TASK_RULES = 4;

/** `enum hook` → the name events and metrics use. */
export const HOOK_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1: "exec",
  2: "open",
  3: "ptrace",
  4: "ptrace_traceme",
  5: "syslog",
  6: "mount",
  7: "umount",
  8: "move_mount",
  9: "kernel_read_file",
  10: "kernel_load_data",
  11: "kernel_module_request",
  12: "bpf",
  13: "socket_create",
  14: "setuid",
  15: "bind",
});

/** `enum outcome`. */
export const OUTCOME_NAMES: Readonly<Record<number, "denied" | "audited" | "bound">> = Object
  .freeze({ 1: "denied", 2: "audited", 3: "bound" });

/** `enum stat` indexes of the per-CPU `stats` map. */
export const STAT = { DENIED: 0, AUDITED: 1, LOST: 2, BOUND: 3, CACHE_HIT: 4 } as const;

/** Longest path the kernel side reads (bytes, with the NUL). */
export const MAX_PATH = 256;
/** Path bytes in a `path_lpm` key (with the NUL of an exact path); longer paths are walked. */
export const LPM_PATH = 252;
/** Rule set ids are 1..MAX_RULESETS-1 (0 = unconfined). */
export const MAX_RULESETS = 1024;
/** Deepest cgroup level the kernel looks at. */
export const MAX_CGROUP_LEVEL = 16;

/** Sizes of the map keys and values, as the C declares them. */
export const SIZES = {
  config: 16,
  ruleset: 8,
  pathKey: 16,
  lpmKey: 8 + LPM_PATH,
  pathVal: 8,
  taskRule: 8,
  event: 72 + MAX_PATH,
} as const;

const EXACT = 0x80000000;

/** FNV-1a 64 of `bytes`, as `walk_step` computes it. */
export function fnv1a64(bytes: Uint8Array): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}

/**
 * The `paths` key of `path` in rule set `ruleset`: a prefix when it ends in `/` (matches every
 * path below it), else the exact path.
 *
 * @example
 * ```ts
 * import { pathKey } from "./guard_layout.ts";
 * pathKey(1, "/etc/").length; // 16
 * ```
 */
export function pathKey(ruleset: number, path: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(path);
  if (bytes.length === 0 || bytes.length >= MAX_PATH) {
    throw new RangeError(
      `Cannot key path ${JSON.stringify(path)}: it must be 1..${MAX_PATH - 1} bytes long`,
    );
  }
  const prefix = path.endsWith("/");
  const out = new Uint8Array(SIZES.pathKey);
  const v = new DataView(out.buffer);
  v.setUint32(0, ruleset, true);
  v.setUint32(4, prefix ? bytes.length : (bytes.length | EXACT) >>> 0, true);
  v.setBigUint64(8, fnv1a64(bytes), true);
  return out;
}

/**
 * The `path_lpm` key of `path` in rule set `ruleset` (an exact path with its NUL, a prefix
 * ending in `/` without), or undefined when it does not fit: such an entry can only match paths
 * too long for a key, which the kernel walks through `paths` instead.
 */
export function lpmKey(ruleset: number, path: string): Uint8Array<ArrayBuffer> | undefined {
  const bytes = new TextEncoder().encode(path);
  const len = path.endsWith("/") ? bytes.length : bytes.length + 1;
  if (bytes.length === 0 || len > LPM_PATH) return undefined;
  const out = new Uint8Array(SIZES.lpmKey);
  const v = new DataView(out.buffer);
  v.setUint32(0, 32 + 8 * len, true);
  v.setUint32(4, ruleset, true);
  out.set(bytes, 8);
  return out;
}

/** One path entry of a rule set: P_* flags, or an exec binding (rule set 0). */
export interface PathEntry {
  /** Ends in `/` for a prefix (everything below it), else one exact path. */
  path: string;
  flags: number;
  /** Rule set an exec of this path binds (rule set 0's entries). */
  bind?: number;
}

/**
 * The `path_lpm` entries of one rule set's `entries`: the trie answers a lookup with the longest
 * matching entry only, so each carries the OR of its own flags and those of every shorter entry
 * it starts with (prefixes ending in `/`), and the nearest binding — what the walk over every
 * directory level OR-s together. Entries too long for a key are left out (see {@linkcode lpmKey}).
 * Duplicate paths merge (flags OR-ed, the last binding wins).
 *
 * @example
 * ```ts
 * import { lpmTable, P } from "./guard_layout.ts";
 * lpmTable([{ path: "/etc/", flags: P.WRITE_DENY }, { path: "/etc/shadow", flags: P.READ_DENY }]);
 * // [{ path: "/etc/", flags: 8, bind: 0 }, { path: "/etc/shadow", flags: 12, bind: 0 }]
 * ```
 */
export function lpmTable(entries: readonly PathEntry[]): Required<PathEntry>[] {
  const own = new Map<string, { flags: number; bind: number }>();
  for (const e of entries) {
    const o = own.get(e.path) ?? { flags: 0, bind: 0 };
    o.flags |= e.flags;
    if (e.bind) o.bind = e.bind;
    own.set(e.path, o);
  }
  const out: Required<PathEntry>[] = [];
  for (const [path, o] of own) {
    if (!lpmKey(0, path)) continue;
    let flags = o.flags, bind = o.bind;
    // Shorter prefixes it starts with, nearest first: each ends at one of its '/'.
    for (let i = path.length - 2; i >= 0; i--) {
      if (path[i] !== "/") continue;
      const up = own.get(path.slice(0, i + 1));
      if (!up) continue;
      flags |= up.flags;
      if (!bind) bind = up.bind;
    }
    out.push({ path, flags: flags >>> 0, bind });
  }
  return out;
}

/** `struct path_val`. */
export function pathVal(flags: number, bind = 0): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(SIZES.pathVal);
  const v = new DataView(out.buffer);
  v.setUint32(0, flags >>> 0, true);
  v.setUint32(4, bind, true);
  return out;
}

/** `struct ruleset`. */
export function rulesetVal(flags: number, generation: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(SIZES.ruleset);
  const v = new DataView(out.buffer);
  v.setUint32(0, flags >>> 0, true);
  v.setUint32(4, generation >>> 0, true);
  return out;
}

/**
 * `struct config`; `rules` is the OR of every active rule set's R_* flags (a hook whose bits are
 * not in it returns at once).
 */
export function configVal(
  agentTgid: number,
  flags: number,
  cgroupLevels: number,
  rules = 0,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(SIZES.config);
  const v = new DataView(out.buffer);
  v.setUint32(0, agentTgid, true);
  v.setUint32(4, flags, true);
  v.setUint32(8, cgroupLevels >>> 0, true);
  v.setUint32(12, rules >>> 0, true);
  return out;
}

/** `struct task_rule` as the agent writes it (origin 1 = set by the agent). */
export function taskRuleVal(ruleset: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(SIZES.taskRule);
  const v = new DataView(out.buffer);
  v.setUint32(0, ruleset, true);
  v.setUint32(4, 1, true);
  return out;
}

/** A u32 or u64 key/value in little-endian bytes. */
export function u32(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n >>> 0, true);
  return out;
}

/** An 8-byte little-endian key (cgroup id). */
export function u64(n: bigint): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, n, true);
  return out;
}

/** One decoded `struct event`. */
export interface GuardEvent {
  /** CLOCK_BOOTTIME nanoseconds. */
  tsNs: bigint;
  cgroupId: bigint;
  pid: number;
  tid: number;
  uid: number;
  ruleset: number;
  hook: string;
  outcome: "denied" | "audited" | "bound";
  /** The R/P bit that decided. */
  rule: number;
  /** Hook-specific argument (target pid, syslog type, address family, …). */
  arg: number;
  /** The parent's tgid (labels a child that is gone by the time the event is read). */
  ppid: number;
  comm: string;
  /** File or executable path (canonical), mount type, module name; "" when none. */
  path: string;
}

function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
}

/** Decodes one ring-buffer sample; throws RangeError on a short one. */
export function decodeEvent(b: Uint8Array): GuardEvent {
  if (b.length < SIZES.event) {
    throw new RangeError(
      `Cannot decode a guard event of ${b.length} bytes: it takes ${SIZES.event}`,
    );
  }
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const hook = v.getUint32(32, true);
  const outcome = v.getUint32(36, true);
  return {
    tsNs: v.getBigUint64(0, true),
    cgroupId: v.getBigUint64(8, true),
    pid: v.getUint32(16, true),
    tid: v.getUint32(20, true),
    uid: v.getUint32(24, true),
    ruleset: v.getUint32(28, true),
    hook: HOOK_NAMES[hook] ?? `hook${hook}`,
    outcome: OUTCOME_NAMES[outcome] ?? "denied",
    rule: v.getUint32(40, true),
    arg: v.getInt32(44, true),
    ppid: v.getUint32(48, true),
    comm: cString(b.subarray(56, 72)),
    path: cString(b.subarray(72, 72 + MAX_PATH)),
  };
}
