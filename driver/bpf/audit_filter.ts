/**
 * The syscall audit's in-kernel prefilter, as data: filter groups (one per rule declaration:
 * syscalls, path prefixes, write-only opens, a cgroup scope — containers: a cgroup not in the
 * host set; or attested workloads by label selectors), checked, merged and folded to the kernel's
 * 64 bits. driver/bpf/audit_filter_maps.ts writes them to the kernel.
 *
 * An event leaves the kernel only when one group takes its syscall, its cgroup, its open flags
 * and its absolute path.
 *
 * @module
 */
import { MAX_GROUPS, prefixKey, SYSCALLS } from "./audit_layout.ts";

/** What one rule declaration can match (the kernel gives it one bit). */
export interface FilterGroup {
  /** The rules it stands for (several when their declarations are the same). */
  rules: string[];
  /** Syscall names (keys of SYSCALLS). */
  syscalls: string[];
  /** Absolute path prefixes a path syscall's path must start with; absent: any path. */
  prefixes?: string[];
  /** Opens (open, openat, openat2) only when for writing (O_WRONLY, O_RDWR); others as named. */
  writes?: boolean;
  /** Only processes in containers: cgroups not in the host set. */
  containers?: boolean;
  /**
   * Only attested workloads: one whose labels include every `name=value` of one selector (`[]`
   * takes every pushed workload). Their cgroups come from `AuditPrograms.setWorkloads` (the daemon).
   */
  workloads?: string[][];
}

/** What the rules can match: everything else stays in the kernel. */
export interface AuditFilter {
  /** Syscall names (keys of SYSCALLS): the union over all groups. */
  syscalls: string[];
  /**
   * Syscalls whose path must start with one of `prefixes` (relative paths pass). Used only
   * without `groups` (then: one group of these, one of the rest); derived from them otherwise.
   */
  pathFiltered: string[];
  prefixes: string[];
  /** Per-declaration groups (agent/audit/prefilter.ts compiles them from the rules). */
  groups?: FilterGroup[];
}

/** An attested workload as the daemon pushes it: its cgroup (v2 id) and labels. */
export interface WorkloadCgroup {
  cgroupId: bigint;
  labels: string[];
}

function groupName(g: Partial<FilterGroup>, i: number): string {
  return Array.isArray(g.rules) && g.rules.length ? `rule "${g.rules.join('", "')}"` : `group ${i}`;
}

/** Checks one group; throws naming it and the field. */
function checkGroup(g: FilterGroup, i: number): void {
  const where = `Cannot use audit filter ${groupName(g, i)}`;
  if (!Array.isArray(g.syscalls) || g.syscalls.length === 0) {
    throw new RangeError(`${where}: syscalls must be a non-empty list`);
  }
  for (const s of g.syscalls) {
    if (!SYSCALLS.has(s)) {
      throw new RangeError(
        `${where}: syscall "${s}" is not one the audit captures (${
          [...SYSCALLS.keys()].join(", ")
        })`,
      );
    }
  }
  for (const p of g.prefixes ?? []) {
    if (typeof p !== "string" || !p.startsWith("/")) {
      throw new RangeError(`${where}: prefix ${JSON.stringify(p)} is not an absolute path`);
    }
    prefixKey(p); // its length
  }
  if (g.containers && g.workloads) {
    throw new RangeError(`${where}: containers and workloads exclude each other`);
  }
  if (g.workloads !== undefined) {
    if (!Array.isArray(g.workloads) || g.workloads.length === 0) {
      throw new RangeError(`${where}: workloads must be a non-empty list of selectors`);
    }
    for (const sel of g.workloads) {
      if (!Array.isArray(sel) || !sel.every((l) => typeof l === "string" && l.indexOf("=") > 0)) {
        throw new RangeError(
          `${where}: workload selector ${
            JSON.stringify(sel)
          } must be a list of "name=value" labels`,
        );
      }
    }
  }
}

const sorted = (a: readonly string[]) => [...new Set(a)].sort();

/** Merges `b` into `a` (a group taking what either takes). */
function union(a: FilterGroup, b: FilterGroup): FilterGroup {
  const out: FilterGroup = {
    rules: sorted([...a.rules, ...b.rules]),
    syscalls: sorted([...a.syscalls, ...b.syscalls]),
  };
  if (a.prefixes && b.prefixes) out.prefixes = sorted([...a.prefixes, ...b.prefixes]);
  if (a.writes && b.writes) out.writes = true;
  const scoped = (g: FilterGroup) => g.containers || g.workloads;
  if (scoped(a) && scoped(b)) {
    // Containers and workloads together cannot be one group's scope: take every cgroup.
    if (a.containers && b.containers) out.containers = true;
    else if (a.workloads && b.workloads) out.workloads = [...a.workloads, ...b.workloads];
  }
  return out;
}

/**
 * The groups `f` stands for: checked (a bad one throws naming it and the field), identical
 * declarations merged, more than {@linkcode MAX_GROUPS} folded into the last (a wider filter,
 * never a narrower one).
 */
export function filterGroups(f: AuditFilter): FilterGroup[] {
  let raw: FilterGroup[];
  if (f.groups) {
    raw = f.groups;
  } else {
    const filtered = new Set(f.pathFiltered);
    raw = [];
    const onPath = f.syscalls.filter((s) => filtered.has(s));
    const rest = f.syscalls.filter((s) => !filtered.has(s));
    if (onPath.length) raw.push({ rules: [], syscalls: onPath, prefixes: f.prefixes });
    if (rest.length) raw.push({ rules: [], syscalls: rest });
    // A path-filtered syscall not in `syscalls` is not traced (as before groups), only checked.
    const stray = f.pathFiltered.filter((s) => !f.syscalls.includes(s));
    if (stray.length) checkGroup({ rules: [], syscalls: stray }, raw.length);
  }
  raw.forEach(checkGroup);
  const byKey = new Map<string, FilterGroup>();
  for (const g of raw) {
    const n: FilterGroup = { rules: sorted(g.rules ?? []), syscalls: sorted(g.syscalls) };
    if (g.prefixes) n.prefixes = sorted(g.prefixes);
    if (g.writes) n.writes = true;
    if (g.containers) n.containers = true;
    if (g.workloads) n.workloads = g.workloads.map(sorted);
    const key = JSON.stringify([
      n.syscalls,
      n.prefixes ?? null,
      !!n.writes,
      !!n.containers,
      n.workloads ?? null,
    ]);
    const had = byKey.get(key);
    if (had) had.rules = sorted([...had.rules, ...n.rules]);
    else byKey.set(key, n);
  }
  const out = [...byKey.values()];
  while (out.length > MAX_GROUPS) {
    out.splice(MAX_GROUPS - 1, 2, union(out[MAX_GROUPS - 1]!, out[MAX_GROUPS]!));
  }
  return out;
}

/** The union view of `groups` (the `AuditFilter` fields the CLI and tests read). */
export function filterOf(groups: FilterGroup[]): AuditFilter {
  const syscalls = new Set<string>();
  const anyPath = new Set<string>();
  const prefixes = new Set<string>();
  for (const g of groups) {
    for (const s of g.syscalls) {
      syscalls.add(s);
      if (!g.prefixes || SYSCALLS.get(s)!.path === undefined) anyPath.add(s);
    }
    for (const p of g.prefixes ?? []) prefixes.add(p);
  }
  return {
    syscalls: [...syscalls].sort(),
    pathFiltered: [...syscalls].filter((s) => !anyPath.has(s)).sort(),
    prefixes: [...prefixes].sort(),
    groups,
  };
}

const bit = (i: number) => 1n << BigInt(i);

/** The groups of `groups` whose workload selectors take a workload with `labels`. */
export function workloadMask(groups: FilterGroup[], labels: readonly string[]): bigint {
  const have = new Set(labels);
  let m = 0n;
  groups.forEach((g, i) => {
    if (g.workloads?.some((sel) => sel.every((l) => have.has(l)))) m |= bit(i);
  });
  return m;
}
