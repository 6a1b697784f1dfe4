/**
 * Resolved runtime rules → what the kernel side keys on: R_* flags and canonical path entries.
 *
 * Paths are made canonical here because the kernel compares `bpf_d_path` output, which has every
 * symlink resolved (`/bin/sh` is `/usr/bin/dash` on Debian). So a rule names the file, not the
 * spelling: denying `/bin/sh` denies `dash` by any path that leads to it. Hard links to the same
 * inode under other names are not covered (documented limit). The written form is kept as well:
 * inside a container, `bpf_d_path` is relative to the container's root, whose symlinks may differ
 * from the host's (there, write the file the link points to, e.g. `/bin/busybox`). Globs are
 * expanded against the host's file system when the rules load (a file created later needs a
 * reload); `dir/` and `dir/**` are prefixes and match files created later too.
 *
 * @module
 */
import { P, R } from "../../driver/bpf/guard_layout.ts";
import type { Capability } from "../policy/runtime_profiles.ts";
import type { PathRule, RuntimeRules } from "../policy/runtime.ts";

/** File-system access used to canonicalise and expand paths (injected in tests). */
export interface PathFs {
  /** `realpath`, or undefined when the path does not exist. */
  realPath(path: string): string | undefined;
  /** Entry names of a directory, or [] when unreadable. */
  readDir(path: string): string[];
}

/** The real file system. */
export const REAL_FS: PathFs = {
  realPath(path) {
    try {
      return Deno.realPathSync(path);
    } catch {
      return undefined;
    }
  },
  readDir(path) {
    try {
      return [...Deno.readDirSync(path)].map((e) => e.name);
    } catch {
      return [];
    }
  },
};

const CAPABILITY_BITS: Record<Capability, number> = {
  ptrace: R.PTRACE,
  syslog: R.SYSLOG,
  mount: R.MOUNT,
  modules: R.MODULE,
  bpf: R.BPF,
  rawSockets: R.RAW_SOCKET,
  setuidRoot: R.SETUID_ROOT,
};

/** One compiled path entry and the written rules it came from. */
export interface KernelPath {
  /** Canonical; ends in `/` for a prefix. */
  path: string;
  flags: number;
  /** Written patterns (with their origin) that produced it. */
  from: string[];
}

/** A compiled rule set. */
export interface KernelRuleset {
  flags: number;
  paths: KernelPath[];
  /** What compilation could not do exactly (glob matched nothing, …). */
  notes: string[];
}

const GLOB = /[*?[]/;

function globRegExp(component: string): RegExp {
  let re = "";
  for (let i = 0; i < component.length; i++) {
    const c = component[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = component.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        const body = component.slice(i + 1, end).replace(/^!/, "^").replace(/\\/g, "\\\\");
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** Expands a glob (no `**`) against `fs`: matching paths, as written (not yet canonical). */
export function expandGlob(pattern: string, fs: PathFs = REAL_FS): string[] {
  let bases = [""];
  for (const part of pattern.split("/").slice(1)) {
    const next: string[] = [];
    for (const base of bases) {
      if (!GLOB.test(part)) {
        next.push(`${base}/${part}`);
        continue;
      }
      const re = globRegExp(part);
      for (const name of fs.readDir(base || "/").sort()) {
        if (re.test(name)) next.push(`${base}/${name}`);
      }
    }
    bases = next;
  }
  return bases;
}

/** Canonical forms of one written pattern (prefixes keep their trailing `/`). */
export function canonicalPaths(pattern: string, fs: PathFs = REAL_FS): string[] {
  const prefix = pattern.endsWith("/**") || pattern.endsWith("/");
  const bare = pattern.replace(/\/\*\*$/, "").replace(/\/$/, "") || "/";
  const written = GLOB.test(bare) ? expandGlob(bare, fs) : [bare];
  const out = new Set<string>();
  const form = (p: string) => prefix ? (p === "/" ? "/" : `${p}/`) : p;
  for (const w of written) {
    out.add(form(fs.realPath(w) ?? w));
    // As written too: a container's root may resolve it differently from the host's.
    out.add(form(w));
  }
  return [...out];
}

/**
 * Compiles one policy's resolved rules.
 *
 * @example
 * ```ts
 * import { compileRuleset } from "./compile.ts";
 * import { resolveRuntime } from "../policy/runtime.ts";
 * compileRuleset(resolveRuntime({ syslog: "deny" })).paths; // []
 * ```
 */
export function compileRuleset(rules: RuntimeRules, fs: PathFs = REAL_FS): KernelRuleset {
  let flags = R.ACTIVE;
  for (const c of rules.deny.keys()) flags |= CAPABILITY_BITS[c];
  if (rules.mode === "audit") flags |= R.AUDIT;
  if (rules.execAllow) flags |= R.EXEC_ALLOWLIST;
  const byPath = new Map<string, KernelPath>();
  const notes: string[] = [];
  const add = (list: PathRule[] | undefined, bit: number, what: string) => {
    for (const rule of list ?? []) {
      const paths = canonicalPaths(rule.path, fs);
      if (paths.length === 0) notes.push(`${what} ${rule.path} (${rule.origin}) matches no file`);
      for (const path of paths) {
        const e = byPath.get(path) ?? { path, flags: 0, from: [] };
        e.flags |= bit;
        const label = `${what} ${rule.path} (${rule.origin})`;
        if (!e.from.includes(label)) e.from.push(label);
        byPath.set(path, e);
      }
    }
  };
  add(rules.execAllow, P.EXEC_ALLOW, "exec allow");
  add(rules.execDeny, P.EXEC_DENY, "exec deny");
  add(rules.denyRead, P.READ_DENY, "read deny");
  add(rules.denyWrite, P.WRITE_DENY, "write deny");
  const paths = [...byPath.values()].sort((a, b) => a.path < b.path ? -1 : 1);
  // Which hooks look paths up at all: an open for reading needs no path without a read deny.
  for (const e of paths) {
    if (e.flags & P.READ_DENY) flags |= R.READ_PATHS;
    if (e.flags & P.WRITE_DENY) flags |= R.WRITE_PATHS;
    if (e.flags & (P.EXEC_DENY | P.EXEC_ALLOW)) flags |= R.EXEC_PATHS;
  }
  return { flags: flags >>> 0, paths, notes };
}

/**
 * The rule an event's `rule` bit names: P_* bits for exec and open (except the allow list), R_*
 * bits for the others (the two sets overlap numerically).
 */
export function ruleName(hook: string, bit: number): string {
  if (hook === "exec") return bit === R.EXEC_ALLOWLIST ? "exec.allow" : "exec.deny";
  if (hook === "open") return bit === P.WRITE_DENY ? "files.denyWrite" : "files.denyRead";
  for (const [name, b] of Object.entries(CAPABILITY_BITS)) if (b === bit) return name;
  return `rule${bit}`;
}
