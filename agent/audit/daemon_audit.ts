/**
 * The syscall audit as the daemon runs it (`agent.audit`): capture programs loaded when it is
 * enabled, rules from a policy source's `audit/` directory (while one delivers them) or else from
 * `agent.audit.rules`, sinks from `agent.audit.sinks`, re-applied on every reload (SIGHUP re-reads
 * the config and the rules path). Rules that do not load, compile or fit the prefilter are
 * reported and the last good rules stay in force. Context labels come from the daemon's
 * attestation; SPIFFE IDs and "has an egress policy" from the policy set in force.
 *
 * Judging runs on the daemon's thread in slices (agent/audit/engine.ts yields every few ms), so
 * the kernel link's answers are never queued behind a backlog.
 *
 * The capture, rules and sinks load lazily: an agent with the audit off never loads them.
 *
 * @module
 */
import type { KernelPayloads } from "../../driver/payloads.ts";
import type {
  AuditFilterDescription,
  AuditPrograms,
  AuditStats,
  WorkloadCgroup,
} from "../../driver/bpf/audit.ts";
import type { AgentConfig } from "../config/schema.ts";
import { CapabilityError } from "../errors.ts";
import { type EventFilter, EventHub } from "../guard/events.ts";
import { logger } from "../log.ts";
import type { evaluatePolicies } from "../policy/match.ts";
import type { PolicySource } from "../policy/source.ts";
import type { PolicySnapshot } from "../sources/snapshot.ts";
import type { ContextSources } from "./context.ts";
import type { LoadedRuleSet } from "./delivered_rules.ts";
import type { AuditCapture, AuditEngine, AuditRecord, AuditSink } from "./engine.ts";
import type { FileSink } from "./file_sink.ts";
import type { WebhookSink } from "./webhook_sink.ts";

/** `agent.audit`. */
export type AuditConfig = AgentConfig["audit"];

/** Options of {@linkcode DaemonAudit}. */
export interface DaemonAuditOptions {
  /** `name=value` labels of a process (the daemon's attestation). */
  labelsOf(pid: number): Promise<string[]>;
  /** Where the config came from, for messages (`/etc/camblet/config.yaml`). */
  configFile?: string;
  /** Loads the capture programs (tests); default: the real ones, not tracing this process. */
  loadPrograms?: () => AuditPrograms;
  /** Ring buffer drain interval, ms (default 20). */
  pollMs?: number;
  /** Root of the proc filesystem, for the workload sweep (tests). */
  procRoot?: string;
  /** Longest the judge runs before yielding, ms (default {@linkcode DAEMON_SLICE_MS}). */
  sliceMs?: number;
}

/**
 * The daemon's judge slice, ms: shorter than the capture's default, as the kernel link's answers
 * wait for the slice in progress (20k-event flood: augment p50 7 ms at 2 ms, 25-33 ms at 5 ms).
 */
export const DAEMON_SLICE_MS = 2;

/** How often the host's cgroups are listed again (a new one counts as a container meanwhile). */
export const HOST_SCAN_MS = 10_000;
/** How often processes are attested for rules scoped to workloads (only when some rule is). */
export const WORKLOAD_SWEEP_MS = 5_000;
/** Most processes pushed as workloads per sweep. */
export const WORKLOADS_MAX = 8192;

/** Where the rules in force came from. */
export interface AuditRulesStatus {
  /** `source git(corp) revision …` or `agent.audit.rules "/etc/camblet/audit"`. */
  from: string;
  origin: "source" | "path";
  id: string;
  kind: string;
  loadedAt: string;
  filter: { syscalls: string[]; pathFiltered: string[]; prefixes: string[] };
}

/** `audit` in `/v1/status`. */
export type DaemonAuditStatus =
  | { state: "off"; reason: string }
  | {
    state: "running";
    programs: string[];
    rules: AuditRulesStatus;
    /** The last rules that were refused (the ones above stayed in force). */
    lastError?: { at: string; message: string };
    /** Kernel counters, then the agent's: queue overflow, judged, evaluation failures. */
    events: AuditStats & { queueDropped: number; judged: number; failed: number };
    /** The in-kernel prefilter in force: its groups, host and workload cgroups, what it kept out. */
    prefilter: AuditFilterDescription;
    /** Processes last pushed for workload-scoped rules, and when (none while no rule is). */
    workloads: { pushed: number; at?: string };
    violations: Record<string, number>;
    sinks: {
      log: boolean;
      file?: { path: string; failed: number };
      webhook?: { url: string; delivered: number; dropped: number; lastError: string };
      stream: { subscribers: number; dropped: number };
    };
  };

const log = logger("audit");

/** A policy matches `labels` when one of its selector maps does (every key has a value). */
function selects(p: PolicySource, labels: ReadonlySet<string>): boolean {
  return p.policy.selectors.some((map) =>
    map.every(([name, values]) => values.some((v) => labels.has(`${name}=${v}`)))
  );
}

/** True iff some policy whose selectors match `labels` has a non-empty `egress` section. */
export function hasEgressPolicy(
  policies: readonly PolicySource[],
  labels: Iterable<string>,
): boolean {
  const set = new Set(labels);
  return policies.some((p) => (p.policy.egress?.length ?? 0) > 0 && selects(p, set));
}

/**
 * The SPIFFE ID the kernel would give a workload with `labels` (no placeholder left);
 * `evaluate` is agent/policy/match.ts's (loaded with the audit, not with every agent).
 */
export function spiffeIdFor(
  evaluate: typeof evaluatePolicies,
  payloads: KernelPayloads,
  labels: Iterable<string>,
): string | undefined {
  const d = evaluate(payloads, { labels });
  return d.intercepted && d.spiffeId && d.unresolved.length === 0 ? d.spiffeId : undefined;
}

/** Per-label-set answers for the policy set in force (events of one workload repeat its labels). */
class PolicyView {
  #payloads: KernelPayloads | undefined;
  #policies: readonly PolicySource[] = [];
  #ids = new Map<string, string | undefined>();
  #egress = new Map<string, boolean>();
  /** Set when the audit starts. */
  evaluate: typeof evaluatePolicies | undefined;

  set(s: PolicySnapshot): void {
    if (s.payloads === this.#payloads && (s.policies ?? []) === this.#policies) return;
    this.#payloads = s.payloads;
    this.#policies = s.policies ?? [];
    this.#ids.clear();
    this.#egress.clear();
  }

  #cached<T>(m: Map<string, T>, labels: string[], f: () => T): T {
    const key = labels.join("\n");
    if (m.has(key)) return m.get(key)!;
    const v = f();
    if (m.size >= 4096) m.delete(m.keys().next().value!);
    m.set(key, v);
    return v;
  }

  spiffeIdOf(labels: string[]): string | undefined {
    const p = this.#payloads;
    const ev = this.evaluate;
    return p && ev ? this.#cached(this.#ids, labels, () => spiffeIdFor(ev, p, labels)) : undefined;
  }

  egressPolicyOf(labels: string[]): boolean {
    return this.#cached(this.#egress, labels, () => hasEgressPolicy(this.#policies, labels));
  }
}

interface Running {
  programs: AuditPrograms;
  engine: AuditEngine;
  capture: AuditCapture;
  rules: AuditRulesStatus;
  timers: ReturnType<typeof setInterval>[];
  sweeping?: Promise<void> | undefined;
  cgroupIdOf: (pid: number, procRoot?: string) => bigint | undefined;
  workloads: { pushed: number; at?: string };
}

interface Sinks {
  key: string;
  log?: AuditSink;
  file?: FileSink;
  webhook?: WebhookSink;
}

/** The daemon's handle on the audit. */
export class DaemonAudit {
  readonly #o: DaemonAuditOptions;
  readonly hub = new EventHub();
  readonly #view = new PolicyView();
  #run: Running | undefined;
  #sinks: Sinks = { key: "" };
  #violations = new Map<string, number>();
  #lastError: { at: string; message: string } | undefined;
  /** The rules path's set last loaded (by content id), reused while its files stay the same. */
  #pathRules: { path: string; set: LoadedRuleSet } | undefined;
  #off = "agent.audit.enabled is false";
  #applying: Promise<unknown> = Promise.resolve();

  constructor(o: DaemonAuditOptions) {
    this.#o = o;
  }

  /**
   * Starts, updates or stops the audit for `config` and the policy set `snapshot` (`rereadPath`:
   * read `agent.audit.rules` again, at SIGHUP; else its last read set is used). At the first
   * start a failure throws (the agent does not start half-configured); later, refused rules are
   * reported (log, status) and the rules in force stay.
   */
  apply(config: AuditConfig, snapshot: PolicySnapshot, rereadPath = true): Promise<void> {
    const run = this.#applying.then(() => this.#apply(config, snapshot, rereadPath));
    this.#applying = run.catch(() => {});
    return run;
  }

  async #apply(config: AuditConfig, snapshot: PolicySnapshot, reread: boolean): Promise<void> {
    this.#view.set(snapshot);
    if (!config.enabled) {
      if (this.#run) {
        await this.#stop();
        log.warn("Syscall audit stopped: agent.audit.enabled is false");
      }
      return;
    }
    const starting = !this.#run;
    let picked: { set: LoadedRuleSet; from: string; origin: "source" | "path" };
    try {
      picked = await this.#pickRules(config, snapshot, reread);
    } catch (e) {
      if (starting) {
        this.#off = (e as Error).message;
        throw e;
      }
      this.#refused((e as Error).message);
      return;
    }
    if (starting) {
      try {
        await this.#applySinks(config);
        await this.#start(picked);
      } catch (e) {
        this.#off = (e as Error).message;
        throw e;
      }
      return;
    }
    try {
      await this.#applySinks(config);
    } catch (e) {
      // The sinks in force stay (and so do the rules: one refusal at a time).
      this.#refused((e as Error).message);
      return;
    }
    const run = this.#run!;
    if (picked.set.id === run.rules.id && picked.from === run.rules.from) return;
    try {
      run.capture.setRules(picked.set.rules);
    } catch (e) {
      this.#refused(`Cannot use the audit rules of ${picked.from}: ${(e as Error).message}`);
      return;
    }
    run.rules = this.#rulesStatus(picked);
    this.#lastError = undefined;
    this.#kickSweep(run);
    log.info("Audit rules swapped", { from: picked.from, id: picked.set.id });
  }

  #refused(message: string): void {
    this.#lastError = { at: new Date().toISOString(), message };
    log.error("Audit rules refused; the last good rules stay in force", {
      rules: this.#run?.rules.from ?? "(none)",
    });
    log.error(`Refused: ${message}`);
  }

  async #pickRules(config: AuditConfig, snapshot: PolicySnapshot, reread: boolean) {
    if (snapshot.audit) {
      const a = snapshot.audit;
      return {
        set: a,
        from: `source ${a.source} revision ${a.revision}`,
        origin: "source" as const,
      };
    }
    if (config.rules === undefined) {
      throw new Error(
        `The syscall audit is enabled (agent.audit.enabled${
          this.#o.configFile ? ` in ${this.#o.configFile}` : ""
        }) but has no rules: set agent.audit.rules to a directory of .rego, a policy.wasm or a ` +
          "bundle, or deliver an audit/ directory from a policy source",
      );
    }
    const where = `agent.audit.rules "${config.rules}"`;
    // The path is read at start and on SIGHUP only: a half-saved edit is not picked up between.
    if (!reread && this.#pathRules?.path === config.rules) {
      return { set: this.#pathRules.set, from: where, origin: "path" as const };
    }
    const { readRulePath, ruleSetId, loadRuleFiles } = await import("./delivered_rules.ts");
    const files = await readRulePath(config.rules);
    const id = ruleSetId(files);
    let set = this.#pathRules?.path === config.rules && this.#pathRules.set.id === id
      ? this.#pathRules.set
      : undefined;
    if (!set) {
      set = await loadRuleFiles(files, where, config.opa);
      this.#pathRules = { path: config.rules, set };
    }
    return { set, from: where, origin: "path" as const };
  }

  #rulesStatus(p: { set: LoadedRuleSet; from: string; origin: "source" | "path" }) {
    const f = p.set.rules.filter;
    return {
      from: p.from,
      origin: p.origin,
      id: p.set.id,
      kind: p.set.kind,
      loadedAt: new Date().toISOString(),
      filter: { syscalls: f.syscalls, pathFiltered: f.pathFiltered, prefixes: f.prefixes },
    };
  }

  async #applySinks(config: AuditConfig): Promise<void> {
    const s = config.sinks;
    const key = JSON.stringify(s);
    if (key === this.#sinks.key) return;
    const next: Sinks = { key };
    try {
      if (s.log.enabled) next.log = (await import("./log_sink.ts")).logSink();
      if (s.file) {
        const { FileSink } = await import("./file_sink.ts");
        next.file = this.#sinks.file?.path === s.file.path && sameFile(this.#sinks.key, key)
          ? this.#sinks.file
          : new FileSink(s.file.path, { maxBytes: s.file.maxBytes, keep: s.file.keep });
      }
      if (s.webhook) {
        const { WebhookSink } = await import("./webhook_sink.ts");
        const { parseDuration } = await import("../duration.ts");
        next.webhook = new WebhookSink(s.webhook.url, {
          queueMax: s.webhook.queueMax,
          attempts: s.webhook.attempts,
          timeoutMs: parseDuration(s.webhook.timeout),
        });
      }
    } catch (e) {
      if (next.file !== this.#sinks.file) next.file?.close();
      await next.webhook?.close();
      throw new Error(`Cannot set up the audit sinks (agent.audit.sinks): ${(e as Error).message}`);
    }
    const old = this.#sinks;
    this.#sinks = next;
    if (old.file && old.file !== next.file) old.file.close();
    await old.webhook?.close();
  }

  /** Every record: counted, then to each sink (a failing one never stops the others). */
  #dispatch(r: AuditRecord): void {
    this.#violations.set(r.rule, (this.#violations.get(r.rule) ?? 0) + 1);
    const s = this.#sinks;
    for (
      const fn of [s.log, s.file?.sink, s.webhook?.sink, (x: AuditRecord) => this.hub.publish(x)]
    ) {
      if (!fn) continue;
      try {
        fn(r);
      } catch {
        // counted by the sink itself
      }
    }
  }

  async #start(p: { set: LoadedRuleSet; from: string; origin: "source" | "path" }): Promise<void> {
    const [{ AuditCapture, AuditEngine }, { MetricsRegistry }, { evaluatePolicies }] = await Promise
      .all([
        import("./engine.ts"),
        import("../../plugins/sdk/metrics.ts"),
        import("../policy/match.ts"),
      ]);
    this.#view.evaluate = evaluatePolicies;
    let programs: AuditPrograms;
    try {
      programs = this.#o.loadPrograms
        ? this.#o.loadPrograms()
        : (await import("../../driver/bpf/audit.ts")).AuditPrograms.load(Deno.pid);
    } catch (e) {
      throw new CapabilityError(
        `Cannot start the syscall audit (agent.audit.enabled): ${(e as Error).message}`,
        { cause: e },
      );
    }
    const engine = new AuditEngine(p.set.rules, [(r) => this.#dispatch(r)], new MetricsRegistry());
    const view = this.#view;
    const sources: ContextSources & { egressPolicyOf(labels: string[]): boolean } = {
      labelsOf: (pid) => this.#o.labelsOf(pid),
      spiffeIdOf: (labels) => view.spiffeIdOf(labels),
      egressPolicyOf: (labels) => view.egressPolicyOf(labels),
    };
    let capture: AuditCapture;
    try {
      capture = AuditCapture.start({
        ...sources,
        programs,
        engine,
        pollMs: this.#o.pollMs ?? 20,
        sliceMs: this.#o.sliceMs ?? DAEMON_SLICE_MS,
      });
    } catch (e) {
      programs.close();
      throw new Error(`Cannot use the audit rules of ${p.from}: ${(e as Error).message}`);
    }
    const { hostCgroupIds, cgroupIdOf } = await import("./prefilter.ts");
    const run: Running = {
      programs,
      engine,
      capture,
      rules: this.#rulesStatus(p),
      timers: [],
      workloads: { pushed: 0 },
      cgroupIdOf,
    };
    this.#run = run;
    const scan = () => {
      try {
        programs.setHostCgroups(hostCgroupIds());
      } catch (e) {
        log.warn("Cannot list the host's cgroups; all count as containers", { error: e });
      }
    };
    scan();
    const sweep = () => this.#kickSweep(run);
    sweep();
    run.timers.push(setInterval(scan, HOST_SCAN_MS), setInterval(sweep, WORKLOAD_SWEEP_MS));
    for (const t of run.timers) Deno.unrefTimer(t);
    log.info("Syscall audit running", {
      programs: programs.attached.length,
      rules: p.from,
      id: p.set.id,
      syscalls: p.set.rules.filter.syscalls.length,
    });
  }

  /**
   * Attests every process (the attestation caches) and pushes their cgroups and labels, when a
   * rule in force is scoped to workloads; pushes nothing otherwise. Yields between processes.
   */
  #kickSweep(run: Running): void {
    if (this.#run !== run || run.sweeping) return;
    run.sweeping = this.#sweep(run).catch((e) =>
      log.warn("Cannot push workloads for workload-scoped audit rules", { error: e })
    ).finally(() => run.sweeping = undefined);
  }

  async #sweep(run: Running): Promise<void> {
    const scoped = run.programs.describe().groups.some((g) => g.cgroups === "workloads");
    if (!scoped) {
      if (run.workloads.pushed > 0) run.programs.setWorkloads([]);
      run.workloads = { pushed: 0 };
      return;
    }
    const proc = this.#o.procRoot ?? "/proc";
    const pids: number[] = [];
    try {
      for (const e of Deno.readDirSync(proc)) {
        const pid = Number(e.name);
        if (Number.isInteger(pid) && pid > 0 && pid !== Deno.pid) pids.push(pid);
      }
    } catch (e) {
      log.warn("Cannot list processes for workload-scoped audit rules", { error: e });
      return;
    }
    const ws: WorkloadCgroup[] = [];
    for (const pid of pids) {
      if (ws.length >= WORKLOADS_MAX || this.#run !== run) break;
      const cgroupId = run.cgroupIdOf(pid, proc);
      if (cgroupId === undefined) continue;
      const labels = await this.#o.labelsOf(pid).catch(() => undefined);
      if (labels) ws.push({ cgroupId, labels });
      await new Promise((r) => setTimeout(r, 0)); // the kernel link's answers come first
    }
    if (this.#run !== run) return;
    run.programs.setWorkloads(ws);
    run.workloads = { pushed: ws.length, at: new Date().toISOString() };
  }

  async #stop(): Promise<void> {
    const r = this.#run;
    if (!r) return;
    this.#run = undefined;
    for (const t of r.timers) clearInterval(t);
    await r.sweeping;
    this.#off = "agent.audit.enabled is false";
    await r.capture.close().catch(() => {});
    r.programs.close();
  }

  /** For `/v1/status`. */
  status(): DaemonAuditStatus {
    const r = this.#run;
    if (!r) return { state: "off", reason: this.#off };
    const s = this.#sinks;
    const out: DaemonAuditStatus = {
      state: "running",
      programs: r.programs.attached,
      rules: r.rules,
      events: {
        ...r.capture.stats(),
        queueDropped: r.capture.dropped,
        judged: r.engine.judged,
        failed: r.engine.failed,
      },
      prefilter: r.programs.describe(),
      workloads: r.workloads,
      violations: byRule(this.#violations),
      sinks: {
        log: s.log !== undefined,
        stream: { subscribers: this.hub.subscribers, dropped: this.hub.dropped },
      },
    };
    if (s.file) out.sinks.file = { path: s.file.path, failed: s.file.failed };
    if (s.webhook) {
      const w = s.webhook;
      out.sinks.webhook = {
        url: redactUrl(w.url),
        delivered: w.delivered,
        dropped: w.dropped,
        lastError: w.lastError,
      };
    }
    if (this.#lastError) out.lastError = this.#lastError;
    return out;
  }

  /** Prometheus text ("" when off): violations per rule, and the capture's counters. */
  metricsText(): string {
    const r = this.#run;
    if (!r) return "";
    const st = r.capture.stats();
    const lines = [
      "# HELP camblet_audit_events_total Syscall audit events, by stage (seen, filtered in the " +
      "kernel, sent, lost in the ring buffer, dropped by the judge's queue, judged)",
      "# TYPE camblet_audit_events_total counter",
    ];
    const stages: [string, number][] = [
      ["seen", st.seen],
      ["filtered", st.filtered],
      ["sent", st.sent],
      ["lost", st.lost],
      ["pending_full", st.pendingFull],
      ["queue_dropped", r.capture.dropped],
      ["judged", r.engine.judged],
    ];
    for (const [stage, n] of stages) {
      lines.push(`camblet_audit_events_total{stage="${stage}"} ${n}`);
    }
    return r.engine.metrics.toPrometheus() + lines.join("\n") + "\n";
  }

  /** The audit's records on the events stream. */
  events(filter: EventFilter): ReadableStream<Uint8Array> {
    return this.hub.subscribe(filter);
  }

  /** Whether the capture runs. */
  get running(): boolean {
    return this.#run !== undefined;
  }

  /** Stops the capture, detaches the programs, flushes the sinks. */
  async close(): Promise<void> {
    await this.#applying;
    const was = this.#run !== undefined;
    await this.#stop();
    this.hub.closeAll();
    this.#sinks.file?.close();
    await this.#sinks.webhook?.close();
    this.#sinks = { key: "" };
    if (was) log.info("Syscall audit stopped");
  }
}

/** Rule name → count, in name order (null prototype: rule names are input). */
function byRule(m: ReadonlyMap<string, number>): Record<string, number> {
  const out: Record<string, number> = Object.create(null);
  for (const [k, v] of [...m].sort(([a], [b]) => a < b ? -1 : 1)) out[k] = v;
  return out;
}

/** Whether the file sink settings are the same in two sink configs (reuse the open file). */
function sameFile(a: string, b: string): boolean {
  const f = (k: string) => k ? JSON.stringify((JSON.parse(k) as AuditConfig["sinks"]).file) : "";
  return f(a) === f(b);
}

/** A URL without credentials or query (tokens live there). */
function redactUrl(u: string): string {
  try {
    const x = new URL(u);
    x.username = "";
    x.password = "";
    x.search = "";
    return x.toString();
  } catch {
    return "(invalid)";
  }
}
