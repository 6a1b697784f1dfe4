/**
 * The runtime guard service: keeps the kernel's rule maps in step with the policies' `runtime:`
 * sections and with the processes attestation labels, and turns the kernel's ring-buffer events
 * into log lines, metrics and the `camblet-agent events` stream.
 *
 * - Rule sets get an id per policy identity (file, selectors, occurrence: `RuntimePolicy.key`,
 *   not its `file#item` position) for the agent's lifetime, never reused; a reload rewrites a rule
 *   set in place (new path entries first, stale ones after), so running workloads get the new
 *   rules at once, without a restart. A removed policy's id is retired, not handed to the next
 *   policy: processes keyed to it (bound at exec, inherited) fall to their cgroup's rules until
 *   the next sweep re-keys them.
 * - A sweep (at start, after each update and every `sweepIntervalMs`) attests every process and
 *   keys the selected ones (cgroup or task storage, see selection.ts). It only tightens:
 *   task storage the agent did not set itself (inherited from a confined parent, bound at exec)
 *   is left alone, so a child never escapes its parent's rules by not matching a selector.
 * - The window between an exec and the agent's answer: cgroup-keyed workloads have none;
 *   children of a confined process carry their parent's rules until re-attested; programs
 *   selected by `process:binary:path` are bound in-kernel at exec; other process-label
 *   selections (name, uid, …) are confined from the next sweep (at most `sweepIntervalMs`).
 * - At start a canary proves enforcement: a child confined to "no reading this file" must fail
 *   to read it, else the guard refuses to run (programs attached but never called).
 *
 * @module
 */
import { P, R } from "../../driver/bpf/guard_layout.ts";
import type { GuardEvent, PathEntry } from "../../driver/bpf/guard_layout.ts";
import { GuardCapabilityError, type GuardStats } from "../../driver/bpf/guard.ts";
import { MetricsRegistry } from "../../plugins/sdk/metrics.ts";
import { logger } from "../log.ts";
import { indexLabels, substituteWorkloadId } from "../policy/match_placeholders.ts";
import type { PolicySource } from "../policy/source.ts";
import { ruleName } from "./compile.ts";
import { type EventFilter, EventHub, type GuardEventRecord } from "./events.ts";
import {
  CGROUP_LABEL_PREFIXES,
  cgroupOf,
  runtimePolicies,
  type RuntimePolicy,
  selectPolicy,
} from "./selection.ts";

/** What the service needs from the kernel side (driver/bpf/guard.ts; a fake in unit tests). */
export interface GuardKernel {
  readonly attached: string[];
  setConfig(c: { flags: number; cgroupLevels: number }): void;
  setRuleset(id: number, flags: number, generation?: number): void;
  clearRuleset(id: number): void;
  setPaths(ruleset: number, entries: readonly PathEntry[]): void;
  prunePaths(keep: ReadonlyMap<number, readonly string[]>): void;
  setCgroup(id: bigint, ruleset: number): void;
  setTask(pid: number, ruleset: number): boolean;
  taskRuleset(pid: number): number | undefined;
  stats(): GuardStats;
  openEvents(onEvent: (e: GuardEvent) => void): { consume(): number; close(): void };
  pin(dir: string): void;
  close(keepPinned?: boolean): void;
}

/** Options of {@linkcode RuntimeGuard.start}. */
export interface RuntimeGuardOptions {
  kernel: GuardKernel;
  trustDomain: string;
  /** Attestation: the `name=value` labels of a process. */
  labelsOf(pid: number): Promise<string[]>;
  /** Every process id (default: /proc). */
  listPids?(): number[];
  sweepIntervalMs?: number;
  /** How often the ring buffer is drained (non-blocking consume), ms. */
  pollMs?: number;
  /** Prove enforcement at start (default true). */
  canary?: boolean;
  /** bpffs directory: pin the programs so rules outlive the agent (fail-closed). */
  pinDir?: string;
}

/** `status` of the guard. */
export interface GuardStatus {
  programs: string[];
  rulesets: { id: number; ref: string; mode: string; target: string; paths: number }[];
  confined: { cgroups: number; tasks: number };
  events: GuardStats & { subscribers: number; streamDropped: number };
  canary: string;
  pinned?: string;
}

const log = logger("guard");
const CANARY_RULESET = 1023;
const CFG_BIND_EXEC = 1;
/** The kernel's open verdict cache reads entries lock-free, which only x86-64's ordering makes sound. */
const CFG_OPEN_CACHE = Deno.build.arch === "x86_64" ? 2 : 0;

/** User-space processes (kernel threads have no executable and cannot be confined). */
function listProcPids(): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      Deno.readLinkSync(`/proc/${e.name}/exe`);
      out.push(Number(e.name));
    } catch { /* kernel thread, or gone */ }
  }
  return out;
}

/** Labels of every pid, 8 at a time; pids that are gone or not attestable are left out. */
async function attestAll(
  pids: readonly number[],
  labelsOf: (pid: number) => Promise<string[]>,
): Promise<[number, string[]][]> {
  const out: [number, string[]][] = [];
  let next = 0;
  const worker = async () => {
    while (next < pids.length) {
      const pid = pids[next++]!;
      try {
        out.push([pid, await labelsOf(pid)]);
      } catch { /* gone, or not attestable */ }
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, pids.length) }, worker));
  return out.sort((a, b) => a[0] - b[0]);
}

/** The running guard. */
export class RuntimeGuard {
  readonly #o: RuntimeGuardOptions;
  readonly #k: GuardKernel;
  #policies: RuntimePolicy[] = [];
  /** Policy key (see selection.ts) → rule set id. */
  #ids = new Map<string, number>();
  #nextId = 1;
  #byId = new Map<number, RuntimePolicy>();
  /** pid → rule set the agent set through task storage. */
  #tasks = new Map<number, number>();
  #cgroups = new Map<bigint, { ruleset: number; level: number }>();
  #labels = new Map<number, string[]>();
  /** Keyed cgroup id → its cgroup-level labels (events of short-lived processes in it). */
  #cgroupLabels = new Map<bigint, string[]>();
  #rb: { consume(): number; close(): void };
  #timers: ReturnType<typeof setInterval>[] = [];
  #sweeping: Promise<void> = Promise.resolve();
  #canary = "skipped";
  #pinned: string | undefined;
  readonly hub = new EventHub();
  readonly metrics = new MetricsRegistry();
  #closed = false;

  private constructor(o: RuntimeGuardOptions) {
    this.#o = o;
    this.#k = o.kernel;
    this.#rb = this.#k.openEvents((e) => this.#onEvent(e));
  }

  /** Starts on a loaded kernel side; proves enforcement first unless `canary: false`. */
  static async start(o: RuntimeGuardOptions): Promise<RuntimeGuard> {
    const g = new RuntimeGuard(o);
    try {
      if (o.canary ?? true) await g.#runCanary();
      if (o.pinDir) g.pin(o.pinDir);
      g.#timers.push(setInterval(() => g.#drain(), o.pollMs ?? 100));
      const every = o.sweepIntervalMs ?? 2000;
      if (every > 0) g.#timers.push(setInterval(() => g.sweep().catch(() => {}), every));
    } catch (e) {
      g.close();
      throw e;
    }
    return g;
  }

  #drain(): void {
    try {
      this.#rb.consume();
    } catch (e) {
      log.error("Cannot read runtime guard events", { error: (e as Error).message });
    }
  }

  async #runCanary(): Promise<void> {
    const dir = await Deno.makeTempDir({ prefix: "camblet-guard-canary-" });
    const file = `${dir}/canary`;
    try {
      await Deno.writeTextFile(file, "canary\n");
      this.#k.setPaths(CANARY_RULESET, [{ path: Deno.realPathSync(file), flags: P.READ_DENY }]);
      this.#k.setRuleset(CANARY_RULESET, R.READ_PATHS);
      const child = new Deno.Command("/bin/sh", {
        args: ["-c", 'read _ && exec cat "$0"', file],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const keyed = this.#k.setTask(child.pid, CANARY_RULESET);
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode("go\n"));
      await w.close();
      const out = await child.output();
      const err = new TextDecoder().decode(out.stderr).trim();
      if (!keyed || out.success) {
        this.#canary = "failed";
        throw new GuardCapabilityError(
          "The runtime guard's programs are attached but do not enforce: a confined canary " +
            "read a denied file. The kernel is not calling BPF LSM hooks (check that " +
            "/sys/kernel/security/lsm lists bpf; boot with lsm=...,bpf)",
        );
      }
      this.#canary = `ok (${err || `exit ${out.code}`})`;
      log.info("Runtime guard canary denied as expected", { detail: err });
    } finally {
      this.#k.clearRuleset(CANARY_RULESET);
      this.#k.prunePaths(new Map([[CANARY_RULESET, []]]));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }

  /** The policies in force (compiled). */
  get policies(): readonly RuntimePolicy[] {
    return this.#policies;
  }

  /**
   * Applies a new policy set to the kernel, then sweeps (awaited, unless `waitForSweep` is false:
   * the daemon does not hold its start or a reload on attesting every process).
   */
  async update(sources: readonly PolicySource[], waitForSweep = true): Promise<void> {
    const next = runtimePolicies(sources);
    /** Rule set id → its paths now: everything else of theirs goes once the new are in. */
    const keep = new Map<number, string[]>();
    const binds: PathEntry[] = [];
    for (const p of next) {
      let id = this.#ids.get(p.key);
      if (id === undefined) {
        if (this.#nextId >= CANARY_RULESET) {
          throw new RangeError(`Cannot load runtime policy ${p.ref}: more than 1022 rule sets`);
        }
        id = this.#nextId++;
        this.#ids.set(p.key, id);
      }
      this.#byId.set(id, p);
      this.#k.setPaths(id, p.kernel.paths);
      keep.set(id, p.kernel.paths.map((e) => e.path));
      for (const b of p.binds) binds.push({ path: b, flags: 0, bind: id });
      this.#k.setRuleset(id, p.kernel.flags);
      for (const n of p.kernel.notes) log.warn(`Runtime policy ${p.ref}: ${n}`);
    }
    this.#k.setPaths(0, binds);
    keep.set(0, binds.map((b) => b.path));
    const live = new Set(next.map((p) => p.key));
    for (const [key, id] of this.#ids) {
      if (!live.has(key)) {
        this.#k.clearRuleset(id);
        this.#byId.delete(id);
        keep.set(id, []);
      }
    }
    // Stale path entries go after the new ones are in: no gap in between.
    this.#k.prunePaths(keep);
    this.#policies = next;
    this.#config(binds.length > 0);
    log.info("Runtime policies loaded", {
      policies: next.length,
      enforce: next.filter((p) => p.rules.mode === "enforce").length,
    });
    const swept = this.sweep();
    if (waitForSweep) await swept;
    else swept.catch(() => {}); // logged by sweep()
  }

  #config(bind = this.#policies.some((p) => p.binds.length > 0)): void {
    let levels = 0;
    for (const c of this.#cgroups.values()) levels |= 1 << c.level;
    this.#k.setConfig({
      flags: (bind ? CFG_BIND_EXEC : 0) | CFG_OPEN_CACHE,
      cgroupLevels: levels >>> 0,
    });
  }

  /** Attests every process and keys the selected ones; serialized. */
  sweep(): Promise<void> {
    const run = this.#sweeping.then(() => this.#sweep());
    this.#sweeping = run.catch((e) =>
      log.error("Runtime guard sweep failed", { error: String(e) })
    );
    return run;
  }

  async #sweep(): Promise<void> {
    if (this.#closed) return;
    const pids = (this.#o.listPids ?? listProcPids)().filter((p) => p !== Deno.pid);
    const cgroups = new Map<bigint, { ruleset: number; level: number }>();
    const seen = new Set<number>();
    const attested = await attestAll(pids, (pid) => this.#o.labelsOf(pid));
    if (this.#closed) return; // stopped while attesting: the maps are gone
    for (const [pid, labels] of attested) {
      seen.add(pid);
      this.#labels.set(pid, labels);
      const sel = this.#policies.length ? selectPolicy(this.#policies, labels) : undefined;
      const id = sel ? this.#ids.get(sel.policy.key)! : 0;
      if (sel?.policy.target === "cgroup") {
        const cg = cgroupOf(pid);
        if (cg && cg.level > 0) {
          cgroups.set(cg.id, { ruleset: id, level: cg.level });
          this.#cgroupLabels.set(
            cg.id,
            labels.filter((l) => CGROUP_LABEL_PREFIXES.some((p) => l.startsWith(p))),
          );
        }
        continue;
      }
      const had = this.#tasks.get(pid);
      if (id && had !== id) {
        if (this.#k.setTask(pid, id)) this.#tasks.set(pid, id);
      } else if (!id && had !== undefined) {
        // Selected by us before, not any more: lift only what we set.
        this.#k.setTask(pid, 0);
        this.#tasks.delete(pid);
      }
    }
    for (const pid of this.#tasks.keys()) if (!seen.has(pid)) this.#tasks.delete(pid);
    for (const pid of this.#labels.keys()) if (!seen.has(pid)) this.#labels.delete(pid);
    for (const id of this.#cgroups.keys()) {
      if (!cgroups.has(id)) {
        this.#k.setCgroup(id, 0);
        this.#cgroupLabels.delete(id);
      }
    }
    for (const [id, c] of cgroups) {
      if (this.#cgroups.get(id)?.ruleset !== c.ruleset) this.#k.setCgroup(id, c.ruleset);
    }
    this.#cgroups = cgroups;
    this.#config();
  }

  #onEvent(e: GuardEvent): void {
    if (e.ruleset === CANARY_RULESET) {
      log.debug("Runtime guard canary event", { hook: e.hook, path: e.path });
      return;
    }
    const p = this.#byId.get(e.ruleset);
    // The process may be gone already (a denied exec's child). A cgroup-keyed workload is
    // labelled by its cgroup (a container's parent, the shim, is a host process); a
    // task-keyed one by its nearest attested ancestor, whose rules it inherited.
    const own = this.#labels.get(e.pid);
    const labels = own ??
      (p?.target === "cgroup"
        ? this.#cgroupLabels.get(e.cgroupId) ?? this.#parentLabels(e.pid, e.ppid)
        : this.#parentLabels(e.pid, e.ppid) ?? this.#cgroupLabels.get(e.cgroupId)) ??
      [];
    const rec: GuardEventRecord = {
      time: new Date().toISOString(),
      outcome: e.outcome,
      hook: e.hook,
      rule: e.outcome === "bound" ? "bind" : ruleName(e.hook, e.rule),
      mode: p?.rules.mode ?? "enforce",
      pid: e.pid,
      tid: e.tid,
      uid: e.uid,
      program: e.comm,
      arg: e.arg,
      cgroupId: String(e.cgroupId),
      labels,
    };
    if (e.path) rec.path = e.path;
    if (p) {
      rec.policy = { file: p.file, item: p.item };
      if (p.line !== undefined) rec.policy.line = p.line;
      if (p.source !== undefined) rec.policy.source = p.source;
      const id = substituteWorkloadId(p.workloadID, indexLabels(labels));
      if (!id.unresolved.length) rec.spiffeId = `spiffe://${this.#o.trustDomain}/${id.workloadID}`;
    }
    this.metrics.counter(
      "camblet_runtime_guard_events_total",
      "Runtime guard decisions reported by the kernel, by policy, rule and outcome",
    ).inc({ policy: p?.ref ?? `ruleset ${e.ruleset}`, rule: rec.rule, outcome: rec.outcome });
    const fields = {
      hook: rec.hook,
      rule: rec.rule,
      pid: rec.pid,
      uid: rec.uid,
      program: rec.program,
      path: rec.path ?? "",
      arg: rec.arg,
      policy: p?.ref ?? "",
      spiffeId: rec.spiffeId ?? "",
    };
    if (e.outcome === "denied") log.warn("Runtime guard denied", fields);
    else if (e.outcome === "audited") log.info("Runtime guard would deny (audit)", fields);
    else log.debug("Runtime guard bound at exec", fields);
    this.hub.publish(rec);
  }

  /** Labels of the nearest attested ancestor (children inherit their parent's rules). */
  #parentLabels(pid: number, ppid = 0): string[] | undefined {
    // The kernel's ppid first: the process itself is often gone (a denied exec's child).
    const direct = ppid ? this.#labels.get(ppid) : undefined;
    if (direct) return direct;
    let cur = ppid || pid;
    for (let i = 0; i < 16; i++) {
      let stat: string;
      try {
        stat = Deno.readTextFileSync(`/proc/${cur}/stat`);
      } catch {
        return undefined;
      }
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!parent) return undefined;
      const l = this.#labels.get(parent);
      if (l) return l;
      cur = parent;
    }
    return undefined;
  }

  /** Pins the programs under the bpffs directory `dir` (fail-closed: they outlive the agent). */
  pin(dir: string): void {
    this.#k.pin(dir);
    this.#pinned = dir;
  }

  /** A live NDJSON stream of events passing `filter`. */
  subscribe(filter: EventFilter): ReadableStream<Uint8Array> {
    return this.hub.subscribe(filter);
  }

  /** Drains the ring buffer now (tests; the timer does it otherwise). */
  drain(): void {
    this.#drain();
  }

  /** What is loaded and keyed, and the kernel's counters. */
  status(): GuardStatus {
    const s: GuardStatus = {
      programs: this.#k.attached,
      rulesets: this.#policies.map((p) => ({
        id: this.#ids.get(p.key)!,
        ref: p.ref,
        mode: p.rules.mode,
        target: p.target,
        paths: p.kernel.paths.length,
      })),
      confined: { cgroups: this.#cgroups.size, tasks: this.#tasks.size },
      events: {
        ...this.#k.stats(),
        subscribers: this.hub.subscribers,
        streamDropped: this.hub.dropped,
      },
      canary: this.#canary,
    };
    if (this.#pinned) s.pinned = this.#pinned;
    return s;
  }

  /** Prometheus text: per policy/rule/outcome counters plus the kernel's totals. */
  metricsText(): string {
    const st = this.#k.stats();
    return this.metrics.toPrometheus() +
      "# HELP camblet_runtime_guard_lost_events_total Events the kernel's ring buffer had no room for\n" +
      "# TYPE camblet_runtime_guard_lost_events_total counter\n" +
      `camblet_runtime_guard_lost_events_total ${st.lost}\n` +
      "# HELP camblet_runtime_guard_rulesets Runtime rule sets loaded\n" +
      "# TYPE camblet_runtime_guard_rulesets gauge\n" +
      `camblet_runtime_guard_rulesets ${this.#policies.length}\n`;
  }

  /**
   * Stops: drains the last events, ends the streams and detaches — unless pinned and
   * `keepPinned`, when the programs and rules stay in force after the agent is gone.
   */
  close(keepPinned = false): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    this.#drain();
    this.#rb.close();
    this.hub.closeAll();
    this.#k.close(keepPinned);
  }
}
