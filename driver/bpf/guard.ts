/**
 * The runtime guard's kernel side: `guard.bpf.c` (embedded), loaded and attached through libbpf,
 * and typed access to its maps. Refuses to start, with the reason and the fix, when the kernel
 * cannot enforce: `bpf` missing from the active LSM list (the programs would attach and never
 * run), or the load refused (EPERM on kernels that forbid BPF LSM programs).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { BpfMap, BpfObject } from "./bpf_object.ts";
import { bpf, BpfError, closeFd } from "./libbpf.ts";
import { GuardCapabilityError, pidfdOpen, RingBuffer, type RingSample } from "./guard_ffi.ts";
import { CGROUP_FILTER_BITS, FastPathSummaries } from "./guard_config.ts";
import {
  decodeEvent,
  type GuardEvent,
  lpmKey,
  lpmTable,
  type PathEntry,
  pathKey,
  pathVal,
  rulesetVal,
  SIZES,
  STAT,
  taskRuleVal,
  u32,
  u64,
} from "./guard_layout.ts";
import { GUARD_OBJECT_BASE64 } from "./guard_object.ts";

export { GuardCapabilityError } from "./guard_ffi.ts";

/** Where the kernel lists its active LSMs. */
export const LSM_LIST_PATH = "/sys/kernel/security/lsm";

/** Counters of the `stats` map, summed over CPUs. */
export interface GuardStats {
  denied: number;
  audited: number;
  /** Events the ring buffer had no room for. */
  lost: number;
  /** Execs that bound a rule set in-kernel. */
  bound: number;
  /** Opens judged from the per-inode verdict cache (no d_path). */
  cacheHits: number;
}

/** Options of {@linkcode GuardPrograms.load}. */
export interface GuardLoadOptions {
  /** The agent's tgid: never confined. */
  agentTgid: number;
  /** LSM list file (tests point it at a fake to simulate a kernel without bpf). */
  lsmListPath?: string;
  /** Object image (default: the embedded build of guard.bpf.c). */
  image?: Uint8Array;
}

/**
 * Why the active LSM list cannot run BPF LSM programs, with the boot parameter to set, or
 * `undefined` when it can.
 *
 * @example
 * ```ts
 * import { lsmProblem } from "./guard.ts";
 * lsmProblem("lockdown,capability,landlock"); // '... lsm=lockdown,capability,landlock,bpf ...'
 * ```
 */
export function lsmProblem(list: string | undefined): string | undefined {
  if (list === undefined) {
    return `Cannot read ${LSM_LIST_PATH} (securityfs not mounted?): cannot tell whether BPF LSM ` +
      "programs would run; mount securityfs (mount -t securityfs none /sys/kernel/security)";
  }
  const names = list.trim().split(",").filter((s) => s);
  if (names.includes("bpf")) return undefined;
  return `The kernel's active LSM list is "${names.join(",")}", without "bpf": BPF LSM ` +
    "programs would load and attach but never run. Boot with " +
    `lsm=${[...names, "bpf"].join(",")} (kernel command line) to enable the runtime guard`;
}

function readLsmList(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

const EPERM = 1;
/** `gens` slot the agent bumps (guard.bpf.c enum gen). */
const GEN_RULES = 1;

/** The loaded guard object: programs attached, maps open. */
export class GuardPrograms {
  #obj: BpfObject;
  readonly #maps: {
    config: BpfMap;
    rulesets: BpfMap;
    cgroupRules: BpfMap;
    paths: BpfMap;
    pathLpm: BpfMap;
    taskRules: BpfMap;
    stats: BpfMap;
    gens: BpfMap;
    eventsFd: number;
  };
  /** Written to `gens[GEN_RULES]` after every rule write: invalidates the open verdict cache. */
  #rulesGen = 0n;
  /** config.rules, CFG_TASK_RULES and cgroup_filter, ordered around every rule write. */
  #summaries: FastPathSummaries;

  private constructor(obj: BpfObject, agentTgid: number, ownImage: boolean) {
    this.#obj = obj;
    const filter = GuardPrograms.#filterMap(obj, ownImage);
    this.#summaries = new FastPathSummaries(agentTgid, {
      config: (v) => this.#maps.config.update(u32(0), v),
      cgroupFilter: (v) => filter?.update(u32(0), v),
    });
    this.#maps = {
      config: obj.map("config", 4, SIZES.config),
      rulesets: obj.map("rulesets", 4, SIZES.ruleset),
      cgroupRules: obj.map("cgroup_rules", 8, 4),
      paths: obj.map("paths", SIZES.pathKey, SIZES.pathVal),
      pathLpm: obj.map("path_lpm", SIZES.lpmKey, SIZES.pathVal),
      taskRules: obj.map("task_rules", 4, SIZES.taskRule),
      stats: obj.map("stats", 4, 8),
      gens: obj.map("gens", 4, 8),
      eventsFd: obj.map("events", 0, 0).fd,
    };
  }

  /**
   * Checks the LSM list, loads (verifies) and attaches every program. Throws
   * {@linkcode GuardCapabilityError} when this kernel cannot enforce, saying why.
   */
  static load(options: GuardLoadOptions): GuardPrograms {
    const problem = lsmProblem(readLsmList(options.lsmListPath ?? LSM_LIST_PATH));
    if (problem) throw new GuardCapabilityError(problem);
    let obj: BpfObject;
    try {
      obj = BpfObject.load(
        options.image ?? Buffer.from(GUARD_OBJECT_BASE64, "base64"),
        "runtime guard BPF object",
        "CAP_BPF and CAP_SYS_ADMIN",
      );
    } catch (e) {
      if (e instanceof BpfError && e.errno === EPERM) {
        throw new GuardCapabilityError(
          "Cannot load the runtime guard's BPF LSM programs: the kernel refused them " +
            "(EPERM; needs root with CAP_BPF+CAP_SYS_ADMIN, and a kernel that allows BPF LSM " +
            "programs: CONFIG_BPF_LSM=y and bpf in lsm=)",
        );
      }
      throw e;
    }
    let g: GuardPrograms;
    try {
      g = new GuardPrograms(obj, options.agentTgid, options.image === undefined);
      obj.attachAll();
      g.setConfig({ flags: 0, cgroupLevels: 0 });
    } catch (e) {
      obj.close();
      throw e;
    }
    return g;
  }

  /** Names of the attached programs. */
  get attached(): string[] {
    return this.#obj.attached;
  }

  /** `cgroup_filter`; a caller's image (an older build, in benchmarks) may not have it. */
  static #filterMap(obj: BpfObject, ownImage: boolean): BpfMap | undefined {
    try {
      return obj.map("cgroup_filter", 4, CGROUP_FILTER_BITS / 8);
    } catch (e) {
      if (ownImage) throw e;
      return undefined;
    }
  }

  /**
   * Writes `config`: flags (CFG_*) and the cgroup levels that have `cgroup_rules` keys. The
   * fast-path parts (the OR of the active rule sets' flags, CFG_TASK_RULES) are kept in step
   * with the rules here (guard_config.ts).
   */
  setConfig(c: { flags: number; cgroupLevels: number }): void {
    this.#summaries.setConfig(c);
  }

  /** Defines rule set `id` (1..1023) with R_* `flags` (R.ACTIVE is added). */
  setRuleset(id: number, flags: number, generation = 0): void {
    const f = (flags | 1) >>> 0;
    this.#summaries.ruleset(
      id,
      f,
      () => this.#maps.rulesets.update(u32(id), rulesetVal(f, generation)),
    );
    this.#rulesChanged();
  }

  /** After the entries are written: an open that read the old generation cached nothing. */
  #rulesChanged(): void {
    this.#maps.gens.update(u32(GEN_RULES), u64(++this.#rulesGen));
  }

  /** Disables rule set `id`: tasks keyed to it run unconfined. */
  clearRuleset(id: number): void {
    this.#summaries.clearRuleset(id, () => this.#maps.rulesets.update(u32(id), rulesetVal(0, 0)));
    this.#rulesChanged();
  }

  /**
   * Writes rule set `ruleset`'s path entries (prefix when a path ends in `/`; rule set 0: exec
   * bindings) into both tables: `path_lpm` with each entry's shorter matches folded in (one
   * lookup per open), `paths` as they are (the walk of paths too long for an LPM key). Entries
   * written before and not listed now stay until {@linkcode prunePaths}.
   */
  setPaths(ruleset: number, entries: readonly PathEntry[]): void {
    // Tasks bound at exec carry the bound rule set: looked up from before any binding.
    for (const e of entries) if (e.bind) this.#summaries.tasked(e.bind);
    for (const e of entries) {
      this.#maps.paths.update(pathKey(ruleset, e.path), pathVal(e.flags, e.bind ?? 0));
    }
    for (const e of lpmTable(entries)) {
      this.#maps.pathLpm.update(lpmKey(ruleset, e.path)!, pathVal(e.flags, e.bind));
    }
    this.#rulesChanged();
  }

  /**
   * Deletes the entries of every rule set in `keep` whose path it does not list (an empty list
   * empties the rule set); rule sets not in `keep` are left alone.
   */
  prunePaths(keep: ReadonlyMap<number, readonly string[]>): void {
    const wanted = new Set<string>();
    for (const [id, paths] of keep) {
      for (const p of paths) {
        wanted.add(pathKey(id, p).join(","));
        const k = lpmKey(id, p);
        if (k) wanted.add(k.join(","));
      }
    }
    const prune = (map: BpfMap, rulesetAt: number) => {
      for (const key of map.keys()) {
        const id = new DataView(key.buffer).getUint32(rulesetAt, true);
        if (keep.has(id) && !wanted.has(key.join(","))) map.delete(key);
      }
    };
    prune(this.#maps.paths, 0);
    prune(this.#maps.pathLpm, 4);
    this.#rulesChanged();
  }

  /** Keys cgroup `id` (and everything below it) to rule set `ruleset`; 0 deletes. */
  setCgroup(id: bigint, ruleset: number): void {
    this.#summaries.cgroup(id, ruleset !== 0, () => {
      if (ruleset === 0) this.#maps.cgroupRules.delete(u64(id));
      else this.#maps.cgroupRules.update(u64(id), u32(ruleset));
    });
  }

  /** Cgroup ids currently keyed. */
  cgroups(): bigint[] {
    return this.#maps.cgroupRules.keys().map((k) => new DataView(k.buffer).getBigUint64(0, true));
  }

  /**
   * Keys the process `pid` (its main thread) to rule set `ruleset` through task storage; its
   * future children inherit it. 0 removes. Returns false when the process is gone.
   */
  setTask(pid: number, ruleset: number): boolean {
    let fd: number;
    try {
      fd = pidfdOpen(pid);
    } catch (e) {
      if (e instanceof BpfError && e.errno === 3 /* ESRCH */) return false;
      throw e;
    }
    try {
      if (ruleset === 0) this.#maps.taskRules.delete(u32(fd));
      else {
        // The programs look task storage up from before the key is in it.
        this.#summaries.tasked(ruleset);
        this.#maps.taskRules.update(u32(fd), taskRuleVal(ruleset));
      }
      return true;
    } finally {
      closeFd(fd);
    }
  }

  /** The rule set in the task storage of `pid` (0 = none), or undefined when it is gone. */
  taskRuleset(pid: number): number | undefined {
    let fd: number;
    try {
      fd = pidfdOpen(pid);
    } catch {
      return undefined;
    }
    try {
      const v = this.#maps.taskRules.lookup(u32(fd));
      return v ? new DataView(v.buffer).getUint32(0, true) : 0;
    } finally {
      closeFd(fd);
    }
  }

  /** The counters, summed over CPUs. */
  stats(): GuardStats {
    const cpus = Math.max(1, bpf().libbpf_num_possible_cpus());
    const perCpu = new BpfMap("stats", this.#maps.stats.fd, 4, 8 * cpus);
    const read = (i: number) => {
      const v = perCpu.lookup(u32(i));
      if (!v) return 0;
      const dv = new DataView(v.buffer);
      let n = 0n;
      for (let c = 0; c < cpus; c++) n += dv.getBigUint64(c * 8, true);
      return Number(n);
    };
    return {
      denied: read(STAT.DENIED),
      audited: read(STAT.AUDITED),
      lost: read(STAT.LOST),
      bound: read(STAT.BOUND),
      cacheHits: read(STAT.CACHE_HIT),
    };
  }

  /** A ring-buffer reader delivering decoded events; call `consume()` on a timer. */
  openEvents(onEvent: (e: GuardEvent) => void): RingBuffer {
    return new RingBuffer(this.#maps.eventsFd, (s: RingSample) => onEvent(decodeEvent(s)));
  }

  /**
   * Pins every link and the rule maps under `dir` (a bpffs directory): the rules then keep being
   * enforced after the agent exits (fail-closed), until `dir` is removed or the host reboots.
   */
  pin(dir: string): void {
    for (const name of this.#obj.attached) this.#obj.pin(name, `${dir}/${name}`);
  }

  /** Detaches everything (unless `keepPinned` and pinned) and frees the object. Idempotent. */
  close(keepPinned = false): void {
    this.#obj.close(keepPinned);
  }
}
