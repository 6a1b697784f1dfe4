/**
 * The audit prefilter in the kernel: {@linkcode AuditFilterMaps} writes filter groups
 * (driver/bpf/audit_filter.ts) into audit.bpf.c's double-buffered maps, keeps the host cgroup set
 * and the attested workloads' cgroups, and describes what is in force for `status`
 * ({@linkcode AuditFilterDescription}).
 *
 * @module
 */
import type { BpfMap } from "./bpf_object.ts";
import {
  MAX_SYSCALL,
  PATH_LEN,
  prefixKey,
  scopeValue,
  syscallCfg,
  syscallKey,
  SYSCALLS,
  u64,
} from "./audit_layout.ts";
import {
  type AuditFilter,
  type FilterGroup,
  filterGroups,
  filterOf,
  type WorkloadCgroup,
  workloadMask,
} from "./audit_filter.ts";

const bit = (i: number) => 1n << BigInt(i);
/** Bytes of a prefix's first component the kernel compares (its buffer, with the NUL). */
const TOP_LEN = 16;
/** Counters of the `stats` map, summed over CPUs (driver/bpf/audit.ts reads them). */
export interface PrefilterCounters {
  /** Traced syscalls entered. */
  seen: number;
  /** Kept in the kernel by the prefilter: `filteredPath` + `filteredCgroup` + `filteredFlags`. */
  filtered: number;
  /** No rule for the syscall takes its path. */
  filteredPath: number;
  /** No rule for the syscall takes its cgroup (containers, workloads). */
  filteredCgroup: number;
  /** An open for reading that only write-only rules name. */
  filteredFlags: number;
  sent: number;
  /** Events the ring buffer had no room for. */
  lost: number;
  /** Syscalls not captured because the pending table was full. */
  pendingFull: number;
}

/**
 * The prefilter in force, for `camblet-agent status` (stable: fields are only ever added).
 *
 * - `syscalls`: traced syscalls; the kernel does not look further at any other.
 * - `groups`: one per distinct rule declaration, in bit order. `prefixes: null` takes any path;
 *   `writes`: opens only when for writing; `cgroups` is `"all"`, `"containers"` or `"workloads"` (then `selectors`, and
 *   `workloadCgroups`: how many pushed cgroups match them now).
 * - `hostCgroups`: cgroups known not to be containers (last scan); `hostCgroupsOverflow`: those
 *   the map had no room for (they count as containers: more is sent, nothing is missed).
 * - `workloadCgroups`: attested workload cgroups pushed by the daemon.
 * - `counters`: since load; `seen` = syscalls the rules name (captured), `keptOut.total` =
 *   `path` + `cgroup` + `flags` (why it stayed in the kernel: checked in the order cgroup, open
 *   flags, path, each counted by the check that left no rule for it), `sent` (to the agent),
 *   `lost` (ring buffer full), `pendingFull`.
 */
export interface AuditFilterDescription {
  syscalls: string[];
  groups: {
    rules: string[];
    syscalls: string[];
    prefixes: string[] | null;
    writes: boolean;
    cgroups: "all" | "containers" | "workloads";
    selectors?: string[][];
    workloadCgroups?: number;
  }[];
  hostCgroups: number;
  hostCgroupsOverflow: number;
  workloadCgroups: number;
  counters: {
    seen: number;
    keptOut: { total: number; path: number; cgroup: number; flags: number };
    sent: number;
    lost: number;
    pendingFull: number;
  };
}

/** The maps of audit.bpf.c the prefilter writes (BpfObject.map with the C sizes). */
export interface PrefilterMaps {
  config: BpfMap;
  syscalls: BpfMap;
  scopes: BpfMap;
  prefixes: BpfMap;
  hostCgroups: BpfMap;
  workloadCgroups: BpfMap;
  /** First components of the prefixes (absent in older builds, which send relative opens). */
  tops?: BpfMap;
}

/** Map names and key/value sizes, as audit.bpf.c declares them. */
export const PREFILTER_MAPS = {
  // `struct gate`: agent tgid, slot, keep bits per syscall (older builds: `config`, 8 bytes).
  config: ["gate", 4, 8 + MAX_SYSCALL],
  syscalls: ["syscalls", 4, 24],
  scopes: ["scopes", 4, 24],
  prefixes: ["prefixes", 4 + PATH_LEN, 8],
  hostCgroups: ["host_cgroups", 8, 1],
  workloadCgroups: ["workload_cgroups", 8, 16],
  tops: ["prefix_tops", 4 + TOP_LEN, 8],
} as const satisfies Record<keyof PrefilterMaps, readonly [string, number, number]>;

/** The prefilter's state in the kernel: filter slots, host set, workload cgroups. */
export class AuditFilterMaps {
  #m: PrefilterMaps;
  #slot = 0;
  /** Groups per slot (the idle one holds the previous filter). */
  #groups: FilterGroup[][] = [[], []];
  #filter: AuditFilter = { syscalls: [], pathFiltered: [], prefixes: [], groups: [] };
  /** Pushed workloads' labels by cgroup id (several workloads may share one cgroup). */
  #workloads = new Map<bigint, string[][]>();
  /** Cgroup ids written to workload_cgroups. */
  #written = new Set<bigint>();
  #host = new Set<bigint>();
  #hostOverflow = 0;

  constructor(maps: PrefilterMaps) {
    this.#m = maps;
  }

  /** The filter in force (with its groups). */
  get filter(): AuditFilter {
    return this.#filter;
  }

  /**
   * Replaces the filter. Everything is checked before the kernel is touched, and the new filter
   * is written to the idle slot: a bad filter, or a failed write, leaves the old one in force.
   */
  set(f: AuditFilter): void {
    const groups = filterGroups(f);
    const next = 1 - this.#slot;
    // Path prefixes: a prefix admits every group with a prefix of it (the trie returns the
    // longest match only).
    const all = new Map<string, bigint>();
    groups.forEach((g) => g.prefixes?.forEach((p) => all.set(p, 0n)));
    for (const p of all.keys()) {
      groups.forEach((g, i) => {
        if (g.prefixes?.some((q) => p.startsWith(q))) all.set(p, all.get(p)! | bit(i));
      });
    }
    const keys = [...all].map(([p, m]) => [prefixKey(p, next), u64(m)] as const);
    for (const k of this.#m.prefixes.keys()) if (k[4] === next) this.#m.prefixes.delete(k);
    for (const [k, v] of keys) this.#m.prefixes.update(k, v);
    if (this.#m.tops) {
      // The groups a relative open below each first component could reach (audit.bpf.c's
      // relative_filtered).
      const tops = new Map<string, bigint>();
      groups.forEach((g, i) =>
        g.prefixes?.forEach((p) => tops.set(topOf(p), (tops.get(topOf(p)) ?? 0n) | bit(i)))
      );
      for (const k of this.#m.tops.keys()) if (k[0] === next) this.#m.tops.delete(k);
      for (const [t, m] of tops) this.#m.tops.update(topKey(next, t), u64(m));
    }
    let unscoped = 0n;
    let containers = 0n;
    let writes = 0n;
    groups.forEach((g, i) => {
      if (g.containers) containers |= bit(i);
      else if (!g.workloads) unscoped |= bit(i);
      if (g.writes) writes |= bit(i);
    });
    this.#m.scopes.update(u32(next), scopeValue(unscoped, containers, writes));
    const conf = this.#m.config.lookup(u32(0)) ?? new Uint8Array(this.#m.config.valueSize);
    for (const [name, spec] of SYSCALLS) {
      let mask = 0n;
      let anyPath = 0n;
      groups.forEach((g, i) => {
        if (!g.syscalls.includes(name)) return;
        mask |= bit(i);
        if (!g.prefixes) anyPath |= bit(i);
      });
      this.#m.syscalls.update(syscallKey(next, spec.nr), syscallCfg(spec, mask, anyPath));
      if (conf.length > 8 + spec.nr) {
        conf[8 + spec.nr] = (conf[8 + spec.nr]! & ~(1 << next)) | (mask ? 1 << next : 0);
      }
    }
    // The idle slot's keep bits first (the slot in force reads only its own bit)…
    const groupsBySlot = [...this.#groups];
    groupsBySlot[next] = groups;
    this.#writeWorkloads(groupsBySlot);
    if (conf.length > 8) this.#m.config.update(u32(0), conf);
    // …then the switch, a write that changes only the slot word; the agent's tgid stays.
    new DataView(conf.buffer).setUint32(4, next, true);
    this.#m.config.update(u32(0), conf);
    this.#slot = next;
    this.#groups = groupsBySlot;
    this.#filter = filterOf(groups);
  }

  #writeWorkloads(groupsBySlot: FilterGroup[][]): void {
    const want = new Map<bigint, Uint8Array<ArrayBuffer>>();
    for (const [cg, sets] of this.#workloads) {
      const v = new Uint8Array(16);
      const dv = new DataView(v.buffer);
      for (let s = 0; s < 2; s++) {
        let m = 0n;
        for (const labels of sets) m |= workloadMask(groupsBySlot[s]!, labels);
        dv.setBigUint64(8 * s, m, true);
      }
      if (v.some((b) => b !== 0)) want.set(cg, v);
    }
    for (const [cg, v] of want) this.#m.workloadCgroups.update(u64(cg), v);
    for (const cg of this.#written) if (!want.has(cg)) this.#m.workloadCgroups.delete(u64(cg));
    this.#written = new Set(want.keys());
  }

  /**
   * Replaces the attested workloads (the daemon pushes all it knows, each time). Rules scoped to
   * workloads see a workload's syscalls once its cgroup is here.
   */
  setWorkloads(ws: readonly WorkloadCgroup[]): void {
    const next = new Map<bigint, string[][]>();
    for (const w of ws) {
      if (typeof w.cgroupId !== "bigint" || w.cgroupId <= 0n || !Array.isArray(w.labels)) {
        throw new RangeError(
          `Cannot push audit workload ${JSON.stringify({ ...w, cgroupId: String(w.cgroupId) })}: ` +
            "it needs a cgroup id (bigint > 0) and a list of labels",
        );
      }
      next.set(w.cgroupId, [...(next.get(w.cgroupId) ?? []), [...w.labels]]);
    }
    this.#workloads = next;
    this.#writeWorkloads(this.#groups);
  }

  /**
   * Replaces the host (non-container) cgroup set. Cgroups not in it count as containers, so a
   * stale or overflowing set sends more, never less.
   */
  setHostCgroups(ids: Iterable<bigint>): void {
    const next = new Set(ids);
    let overflow = 0;
    const stored = new Set<bigint>();
    for (const id of next) {
      if (this.#host.has(id)) {
        stored.add(id);
        continue;
      }
      try {
        this.#m.hostCgroups.update(u64(id), new Uint8Array([1]));
        stored.add(id);
      } catch {
        overflow++; // the map is full: that cgroup counts as a container
      }
    }
    for (const id of this.#host) if (!next.has(id)) this.#m.hostCgroups.delete(u64(id));
    this.#host = stored;
    this.#hostOverflow = overflow;
  }

  /** The filter in force and the counters (see {@linkcode AuditFilterDescription}). */
  describe(c: PrefilterCounters): AuditFilterDescription {
    const groups = this.#groups[this.#slot]!;
    return {
      syscalls: this.#filter.syscalls,
      groups: groups.map((g, i) => {
        const d: AuditFilterDescription["groups"][number] = {
          rules: g.rules,
          syscalls: g.syscalls,
          prefixes: g.prefixes ?? null,
          writes: !!g.writes,
          cgroups: g.containers ? "containers" : g.workloads ? "workloads" : "all",
        };
        if (g.workloads) {
          d.selectors = g.workloads;
          let n = 0;
          for (const sets of this.#workloads.values()) {
            if (sets.some((l) => (workloadMask(groups, l) & bit(i)) !== 0n)) n++;
          }
          d.workloadCgroups = n;
        }
        return d;
      }),
      hostCgroups: this.#host.size,
      hostCgroupsOverflow: this.#hostOverflow,
      workloadCgroups: this.#workloads.size,
      counters: {
        seen: c.seen,
        keptOut: {
          total: c.filtered,
          path: c.filteredPath,
          cgroup: c.filteredCgroup,
          flags: c.filteredFlags,
        },
        sent: c.sent,
        lost: c.lost,
        pendingFull: c.pendingFull,
      },
    };
  }
}

/**
 * The first component of an absolute prefix ("/etc/shadow" → "etc"), or "" (every cwd) when the
 * prefix could match more than one: "/", "/et" ("/etc", "/eth"), a relative one.
 */
function topOf(prefix: string): string {
  const m = /^\/([^/]+)\//.exec(prefix);
  return m ? m[1]! : "";
}

/** `struct top_key`: the slot, then the component's first 15 bytes, NUL-padded. */
function topKey(slot: number, top: string): Uint8Array<ArrayBuffer> {
  const k = new Uint8Array(4 + TOP_LEN);
  new DataView(k.buffer).setUint32(0, slot, true);
  k.set(new TextEncoder().encode(top).subarray(0, TOP_LEN - 1), 4);
  return k;
}

function u32(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}
