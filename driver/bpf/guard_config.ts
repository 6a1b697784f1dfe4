/**
 * The guard's fast-path summaries, kept in step with the rules: `config.rules` (the OR of every
 * active rule set's R_* flags: a hook whose bits are not in it returns at once), CFG_TASK_RULES
 * (task storage is looked up only while some active rule set may be in it) and `cgroup_filter`
 * (a bit per `cgroup_rules` key, id mod {@linkcode CGROUP_FILTER_BITS}: a cgroup whose bit is
 * clear is not looked up). The programs skip what these say no rule needs, so every change is
 * ordered: a summary is widened before the rule, task key or cgroup key that needs it is
 * written, and narrowed only after the last one that needed it is gone. Pure: the writes go to
 * the functions given (driver/bpf/guard.ts passes the maps).
 *
 * @module
 */
import { CFG_BIND_EXEC, CFG_TASK_RULES, configVal } from "./guard_layout.ts";

/** Bits of `struct cgroup_filter` (guard.bpf.c). */
export const CGROUP_FILTER_BITS = 512;

/** Where the summaries are written. */
export interface SummaryWriter {
  config(value: Uint8Array<ArrayBuffer>): void;
  cgroupFilter(value: Uint8Array<ArrayBuffer>): void;
}

/** `struct cgroup_filter` with the bit of every id in `ids` set. */
export function cgroupFilterVal(ids: Iterable<bigint>): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(CGROUP_FILTER_BITS / 8);
  for (const id of ids) {
    const b = Number(id % BigInt(CGROUP_FILTER_BITS));
    out[b >> 3]! |= 1 << (b & 7);
  }
  return out;
}

/** Whether `filter` (a `struct cgroup_filter`) has the bit of cgroup `id`, as the programs test it. */
export function cgroupFilterHas(filter: Uint8Array, id: bigint): boolean {
  const b = Number(id % BigInt(CGROUP_FILTER_BITS));
  return (filter[b >> 3]! & (1 << (b & 7))) !== 0;
}

/** The summaries of one loaded guard object; call its methods around every rule write. */
export class FastPathSummaries {
  readonly #w: SummaryWriter;
  readonly #agentTgid: number;
  /** The caller's part of `config`. */
  #config = { flags: 0, cgroupLevels: 0 };
  /** Flags of every active rule set, as written. */
  #active = new Map<number, number>();
  /** Rule sets ever written into task storage or bound at exec: their tasks may carry them. */
  #tasked = new Set<number>();
  #cgroups = new Set<bigint>();
  #written = { config: "", filter: "" };

  constructor(agentTgid: number, writer: SummaryWriter) {
    this.#agentTgid = agentTgid;
    this.#w = writer;
  }

  /** The caller's flags (CFG_*; CFG_TASK_RULES is computed here) and cgroup levels. */
  setConfig(c: { flags: number; cgroupLevels: number }): void {
    this.#config = { flags: c.flags, cgroupLevels: c.cgroupLevels };
    this.#writeConfig();
  }

  /** Rule set `id` becomes active with `flags` (R.ACTIVE included) when `write` runs. */
  ruleset(id: number, flags: number, write: () => void): void {
    // Wide enough for the old flags and the new while the rule set changes, exact after.
    this.#writeConfig(flags, this.#tasked.has(id));
    write();
    this.#active.set(id, flags >>> 0);
    this.#writeConfig();
  }

  /** Rule set `id` becomes inactive when `write` runs. */
  clearRuleset(id: number, write: () => void): void {
    write();
    this.#active.delete(id);
    this.#writeConfig();
  }

  /** A task is keyed to rule set `id` (or bound to it at exec) from now on: call before. */
  tasked(id: number): void {
    if (this.#tasked.has(id)) return;
    this.#tasked.add(id);
    this.#writeConfig();
  }

  /** Cgroup `id` is keyed (`keyed`) or unkeyed when `write` runs. */
  cgroup(id: bigint, keyed: boolean, write: () => void): void {
    if (keyed) {
      this.#cgroups.add(id);
      this.#writeFilter();
      write();
    } else {
      write();
      this.#cgroups.delete(id);
      this.#writeFilter();
    }
  }

  #writeConfig(extra = 0, extraTasked = false): void {
    let rules = extra;
    let tasked = (this.#config.flags & CFG_BIND_EXEC) !== 0 || extraTasked;
    for (const [id, f] of this.#active) {
      rules |= f;
      if (this.#tasked.has(id)) tasked = true;
    }
    const flags = (this.#config.flags & ~CFG_TASK_RULES) | (tasked ? CFG_TASK_RULES : 0);
    const v = configVal(this.#agentTgid, flags >>> 0, this.#config.cgroupLevels, rules);
    const key = v.join(",");
    if (key === this.#written.config) return;
    this.#w.config(v);
    this.#written.config = key;
  }

  #writeFilter(): void {
    const v = cgroupFilterVal(this.#cgroups);
    const key = v.join(",");
    if (key === this.#written.filter) return;
    this.#w.cgroupFilter(v);
    this.#written.filter = key;
  }
}
