/**
 * The daemon: starts the data plane (the kernel device through the kernel worker, or the proxy
 * data plane where the module is absent: agent/daemon/data_plane.ts), pushes `load_config`, trace
 * `clear`, `load_sd_info` and `load_policies` in that order, then serves. The policy sources
 * (agent/sources) follow their own changes; each new valid snapshot, SIGHUP (every source checked
 * again) and the periodic re-resolution of service hostnames push only what changed. A rejected
 * delivery keeps the last good set in force and shows as the last reload. SIGTERM/SIGINT stop
 * it gracefully; a dead device is fatal.
 *
 * @module
 */
import type { KernelPayloads } from "../../driver/payloads.ts";
import type { LoadedConfig } from "../config/load.ts";
import { CapabilityError, formatProblem, ValidationError } from "../errors.ts";
import { parseDuration } from "../duration.ts";
import type { IssuanceHook } from "../opa/issuance_hook.ts";
import { type PolicySnapshot, PolicySources, sourcesMetrics, sourceSpecs } from "../sources/mod.ts";
import { agentMetrics } from "../identity/metrics.ts";
import { RefusalIssuer } from "../identity/refusal.ts";
import { logger } from "../log.ts";
import { notifySystemd } from "../sd_notify.ts";
import { VERSION } from "../version.ts";
import { renderMetrics } from "../control/metrics.ts";
import { type Listener, serveControlSocket, serveMetricsTcp } from "../control/server.ts";
import { TraceHub } from "../control/trace_hub.ts";
import { DaemonGuard, labelsVia } from "../guard/daemon_guard.ts";
import { DaemonAudit } from "../audit/daemon_audit.ts";
import { eventFilterFromQuery, mergeStreams } from "../guard/events.ts";
import { chooseDataPlane, type DataPlane } from "./data_plane.ts";
import { assertDevice, openKernelPlane } from "./kernel_plane.ts";
import { spawnKernelWorker } from "./kernel_worker.ts";
import type { PayloadOrigin } from "./payload_sync.ts";
import type { ProxyPlaneOptions } from "./proxy_plane.ts";
import { type AgentServices, createServices } from "./services.ts";
import type { AgentStatus, ReloadRecord } from "./status.ts";

/** Options of {@linkcode Daemon.start}. */
export interface DaemonOptions {
  loaded: LoadedConfig;
  /** Re-reads the configuration (file, env, flags) on SIGHUP; default: keep the first one. */
  reloadConfig?: () => Promise<LoadedConfig>;
  /** Builds the request handlers (default: CA plugin + identity manager + attestation). */
  services?: (
    loaded: LoadedConfig,
    payloads: () => KernelPayloads,
    signal: AbortSignal,
    issuanceHook: () => IssuanceHook | undefined,
    dataPlane: "kernel" | "proxy",
  ) => Promise<AgentServices>;
  /** Starts the proxy data plane (default: agent/daemon/proxy_plane.ts). */
  openProxy?: (o: ProxyPlaneOptions) => Promise<DataPlane>;
  /** Creates the kernel worker (default: agent/daemon/kernel_worker.ts). */
  spawnWorker?: () => Worker;
  /** Listen for SIGTERM, SIGINT and SIGHUP (default true). */
  handleSignals?: boolean;
  /** Re-resolve service hostnames this often, ms (0 = never; default: the config's value). */
  resolveIntervalMs?: number;
  /** Quiet time after a source change before reloading, ms (default 200). */
  debounceMs?: number;
}

/** How the daemon ended. */
export interface DaemonExit {
  code: number;
  reason: string;
}

const log = logger("daemon");
/** Reload reasons, weakest first: a SIGHUP also re-reads config and refreshes every source. */
const RELOAD_RANK = ["resolve", "source", "sighup"];

function origin(p: PolicySnapshot): PayloadOrigin {
  return { provenance: p.provenance, servicesFiles: p.files.services };
}

/** A running agent. */
export class Daemon {
  readonly #o: DaemonOptions;
  #loaded: LoadedConfig;
  #sources!: PolicySources;
  #unsubscribe: (() => void) | undefined;
  /** The snapshot pushed to the kernel. */
  #current!: PolicySnapshot;
  #services!: AgentServices;
  #plane!: DataPlane;
  /** The kernel worker, from its early spawn until the kernel plane takes it. */
  #worker: Worker | undefined;
  #trace!: TraceHub;
  #guard: DaemonGuard | undefined;
  #audit: DaemonAudit | undefined;
  #listeners: Listener[] = [];
  #timers: ReturnType<typeof setTimeout>[] = [];
  #debounce: ReturnType<typeof setTimeout> | undefined;
  /** The strongest reason asked for since the last scheduled reload (see {@linkcode requestReload}). */
  #pendingReason: string | undefined;
  #signals: [Deno.Signal, () => void][] = [];
  #ac = new AbortController();
  #ready = false;
  #stopping = false;
  #revision = 0;
  #reloads: Record<string, number> = {};
  #lastReload: ReloadRecord | undefined;
  #reloading: Promise<unknown> = Promise.resolve();
  #startedAt = new Date();
  #exit!: (e: DaemonExit) => void;
  /** Resolves when the daemon has stopped, with its exit code. */
  readonly done: Promise<DaemonExit>;

  private constructor(o: DaemonOptions) {
    this.#o = o;
    this.#loaded = o.loaded;
    this.done = new Promise((r) => this.#exit = r);
  }

  /** Starts the agent; rejects (after cleaning up) if any startup step fails. */
  static async start(o: DaemonOptions): Promise<Daemon> {
    const d = new Daemon(o);
    try {
      await d.#start();
    } catch (e) {
      await d.#teardown();
      throw e;
    }
    return d;
  }

  async #start(): Promise<void> {
    const agent = this.#loaded.config.agent;
    const choice = await chooseDataPlane(agent);
    log.info("Data plane", { kind: choice.kind, reason: choice.reason });
    // Fail fast, before starting plugins, when the module was asked for and is not loaded.
    if (choice.kind === "kernel") await assertDevice(agent.kernelModuleDevice);
    // Spawned while the plugins start.
    if (choice.kind === "kernel") {
      this.#worker = (this.#o.spawnWorker ?? spawnKernelWorker)();
      // The refusal issuer (an ECDSA key, a fixed RSA spare) is made meanwhile, off this
      // thread: the identity manager and the kernel link wait for it, not plugins and sources.
      RefusalIssuer.shared().catch(() => {});
    }
    const { specs, problems } = sourceSpecs(this.#loaded);
    if (problems.length) throw new ValidationError("Cannot load policy sources", problems);
    this.#sources = await PolicySources.start({
      specs,
      trustDomain: agent.trustDomain,
      signal: this.#ac.signal,
      // Delivered audit rules are compiled only while the audit is on (the config in force).
      loadAudit: async (a, where) => {
        const audit = this.#loaded.config.agent.audit;
        if (!audit.enabled) return undefined;
        const { loadRuleFiles } = await import("../audit/delivered_rules.ts");
        return await loadRuleFiles(a.files, where, audit.opa);
      },
    });
    this.#current = this.#sources.current; // its warnings were logged by the sources
    const make = this.#o.services ?? ((l, p, s, h, k) => createServices(l.config, p, s, h, k));
    this.#services = await make(
      this.#loaded,
      () => this.#current.payloads,
      this.#ac.signal,
      () => this.#current.issuanceHook,
      choice.kind,
    );
    this.#trace = new TraceHub((req) => this.#plane.pushTrace(req));
    const services = this.#services;
    // Runtime rules that cannot be enforced here stop the start (GuardUnavailableError).
    this.#guard = new DaemonGuard({
      trustDomain: agent.trustDomain,
      labelsOf: labelsVia(services.augment),
      config: agent.guard,
    });
    await this.#guard.apply(this.#current.policies ?? []);
    if (choice.kind === "kernel") {
      const worker = this.#worker!;
      this.#worker = undefined; // the kernel plane owns it now
      this.#plane = await openKernelPlane({
        choice,
        device: agent.kernelModuleDevice,
        services,
        onLog: (m) => this.#trace.deliver(m),
        spawnWorker: () => worker,
      });
    } else {
      if (!services.identities) {
        throw new CapabilityError(
          "The proxy data plane needs the identity manager's workload keys",
        );
      }
      try {
        // Loaded only for this plane: the kernel plane never needs the proxy and its BPF code.
        const open = this.#o.openProxy ?? (await import("./proxy_plane.ts")).openProxyPlane;
        this.#plane = await open({
          choice,
          agent,
          payloads: () => this.#current.payloads,
          labelsFor: (task, signal) => services.augment(task, signal),
          identities: services.identities,
          onLog: (m) => this.#trace.deliver(m),
        });
      } catch (e) {
        const fix = choice.reason.startsWith("auto")
          ? `; load camblet-driver (modprobe camblet) or fix the above`
          : "";
        throw new CapabilityError(
          `Cannot start the proxy data plane (${choice.reason}): ${(e as Error).message}${fix}`,
          { cause: e },
        );
      }
    }
    this.#plane.ended.then((why) => {
      if (this.#stopping) return;
      log.error("Data plane lost", { reason: why });
      void this.stop(`${choice.kind === "kernel" ? "kernel link" : "data plane"} lost: ${why}`, 1);
    });
    await this.#plane.pushInitial(this.#current.payloads, origin(this.#current));
    this.#revision = 1;
    // After the kernel has its first set: loading and compiling rules never delays it.
    this.#audit = new DaemonAudit({
      labelsOf: labelsVia(services.augment),
      ...(this.#loaded.file ? { configFile: this.#loaded.file } : {}),
    });
    await this.#audit.apply(agent.audit, this.#current);
    const sources = {
      ready: () =>
        this.#ready
          ? { ready: true }
          : { ready: false, reason: this.#stopping ? "stopping" : "starting" },
      status: () => this.status(),
      metrics: () => this.metrics(),
      trace: this.#trace,
      events: (u: URL) => this.#events(u),
    };
    this.#listeners.push(await serveControlSocket(agent.controlSocket, sources));
    if (agent.metricsAddress) {
      this.#listeners.push(await serveMetricsTcp(agent.metricsAddress, sources));
    }
    if (this.#o.handleSignals ?? true) this.#installSignals();
    // Sources follow their own changes; each new valid snapshot is pushed in a serialized reload.
    this.#unsubscribe = this.#sources.subscribe(() => this.requestReload("source"));
    const every = this.#o.resolveIntervalMs ?? parseDuration(agent.serviceResolveInterval);
    if (every > 0) this.#timers.push(setInterval(() => this.requestReload("resolve"), every));
    this.#ready = true;
    log.info("Agent ready", {
      policies: this.#current.payloads.load_policies.policies.length,
      services: Object.keys(this.#current.payloads.load_sd_info).length,
      control: this.#listeners.map((l) => l.address).join(" "),
    });
    notifySystemd(`READY=1\nSTATUS=Agent ready (${this.#plane.choice.kind} data plane)`);
  }

  /** `/v1/events`: guard and audit records (`?kind=` picks one); RangeError when neither runs. */
  #events(u: URL): ReadableStream<Uint8Array> {
    const f = eventFilterFromQuery(u);
    const guard = this.#guard?.status();
    const audit = this.#audit?.status() ?? { state: "off", reason: "not started" };
    const streams: ReadableStream<Uint8Array>[] = [];
    if (f.kind !== "audit" && guard?.state === "running") streams.push(this.#guard!.events(f));
    if (f.kind !== "guard" && audit.state === "running") streams.push(this.#audit!.events(f));
    if (streams.length === 0) {
      const why = (s: { state: string; reason?: string } | undefined) =>
        s && "reason" in s ? s.reason : "";
      throw new RangeError(
        [
          f.kind !== "audit" ? `The runtime guard is not running: ${why(guard)}` : "",
          f.kind !== "guard" ? `the syscall audit is not running: ${why(audit)}` : "",
        ].filter((x) => x).join("; "),
      );
    }
    return mergeStreams(streams);
  }

  #installSignals(): void {
    const on = (sig: Deno.Signal, fn: () => void) => {
      Deno.addSignalListener(sig, fn);
      this.#signals.push([sig, fn]);
    };
    on("SIGHUP", () => this.requestReload("sighup", 0));
    on("SIGTERM", () => void this.stop("SIGTERM", 0));
    on("SIGINT", () => void this.stop("SIGINT", 0));
  }

  /**
   * Schedules a reload after `delayMs` of quiet (file events come in bursts). Requests coalesce
   * into one that keeps the strongest reason, so a file event never swallows a SIGHUP's full
   * refresh.
   */
  requestReload(reason: string, delayMs = this.#o.debounceMs ?? 200): void {
    if (this.#stopping) return;
    if (reason === "sighup") log.info("SIGHUP: reloading configuration and every source");
    const rank = (r: string | undefined) => r === undefined ? -1 : RELOAD_RANK.indexOf(r);
    if (rank(reason) >= rank(this.#pendingReason)) this.#pendingReason = reason;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => {
      const why = this.#pendingReason ?? reason;
      this.#pendingReason = undefined;
      void this.reloadNow(why);
    }, delayMs);
  }

  /** Re-validates and pushes what changed; a rejected set leaves the last good one in force. */
  reloadNow(reason: string): Promise<ReloadRecord> {
    const run = this.#reloading.then(() => this.#reload(reason));
    this.#reloading = run.catch(() => {});
    return run;
  }

  async #reload(reason: string): Promise<ReloadRecord> {
    const record: ReloadRecord = {
      at: new Date().toISOString(),
      reason,
      outcome: "unchanged",
      changed: [],
      problems: [],
    };
    try {
      if (this.#stopping) return record;
      const loaded = reason === "sighup" && this.#o.reloadConfig
        ? await this.#o.reloadConfig()
        : this.#loaded;
      const errorsBefore = this.#sourceErrors();
      if (reason === "sighup") await this.#sources.refresh();
      else if (reason === "resolve") await this.#sources.reresolve();
      const next = this.#sources.current;
      await this.#guard?.apply(next.policies ?? []); // refuses unenforceable runtime rules
      record.changed = await this.#plane.pushChanged(next.payloads, origin(next));
      // Refused audit rules keep the last good ones (reported in status); never the policy set.
      await this.#audit?.apply(loaded.config.agent.audit, next, reason === "sighup").catch((e) =>
        log.error(`Cannot start the syscall audit: ${(e as Error).message}`)
      );
      if (loaded !== this.#loaded) this.#configChanged(loaded);
      const seen = new Set(errorsBefore.map((e) => e.key));
      const fresh = this.#sourceErrors().filter((e) => !seen.has(e.key));
      if (record.changed.length === 0 && fresh.length > 0) {
        throw new ValidationError(
          "Policy sources rejected",
          fresh.map((e) => ({ message: e.problem })),
        );
      }
      this.#current = next;
      if (record.changed.length > 0) {
        this.#revision++;
        record.outcome = "applied";
        log.info("Reloaded", {
          reason,
          pushed: record.changed.join(","),
          revision: this.#revision,
        });
      } else {
        // A user's SIGHUP deserves an answer; periodic and file-burst reloads stay quiet.
        if (reason === "sighup") log.info("Reloaded; nothing changed", { reason });
        else log.debug("Reload found nothing to push", { reason });
      }
    } catch (e) {
      record.outcome = "rejected";
      const problems = e instanceof ValidationError
        ? e.problems.map(formatProblem)
        : [(e as Error).message];
      record.problems = problems;
      log.error("Reload rejected; the last good policies and services stay in force", {
        reason,
        problems: problems.length,
      });
      for (const p of problems) log.error(`Rejected: ${p}`);
    }
    this.#reloads[record.outcome] = (this.#reloads[record.outcome] ?? 0) + 1;
    this.#lastReload = record;
    return record;
  }

  /** `at` + problems of every failing or rejected source, to spot new errors. */
  #sourceErrors(): { key: string; problem: string }[] {
    return this.#sources.status().sources.flatMap((s) =>
      s.lastError && (s.state === "failing" || s.state === "rejected")
        ? s.lastError.problems.map((problem) => ({ key: `${s.lastError!.at} ${problem}`, problem }))
        : []
    );
  }

  /**
   * The last reload, or a source rejection newer than it (sources reject on their own, between
   * the daemon's reloads).
   */
  #lastReloadRecord(): ReloadRecord | undefined {
    let last = this.#lastReload;
    for (const s of this.#sources?.status().sources ?? []) {
      const e = s.lastError;
      if (!e || (s.state !== "failing" && s.state !== "rejected")) continue;
      // A reload that found nothing to push says nothing about a rejection still in force.
      if (last && last.outcome !== "unchanged" && Date.parse(last.at) >= Date.parse(e.at)) {
        continue;
      }
      last = {
        at: e.at,
        reason: `source ${s.id}`,
        outcome: "rejected",
        changed: [],
        problems: e.problems,
      };
    }
    return last;
  }

  #configChanged(next: LoadedConfig): void {
    const before = this.#loaded.config.agent;
    const after = next.config.agent;
    for (
      const key of [
        "kernelModuleDevice",
        "ca",
        "caPEMPath",
        "controlSocket",
        "metricsAddress",
        "serviceResolveInterval",
      ] as const
    ) {
      if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) {
        log.warn("Configuration change needs a restart to take effect", { key: `agent.${key}` });
      }
    }
    // Sources are started once; a changed source list (or paths) takes a restart.
    const specs = (l: LoadedConfig) => JSON.stringify(sourceSpecs(l).specs);
    if (specs(this.#loaded) !== specs(next)) {
      log.warn("Configuration change needs a restart to take effect", {
        key: "plugins.policySource",
      });
    }
    this.#loaded = next;
  }

  /** Stops: listeners first, then answers what is in flight and closes the device. */
  async stop(reason: string, code = 0): Promise<void> {
    if (this.#stopping) return this.done.then(() => {});
    this.#stopping = true;
    this.#ready = false;
    log.info("Stopping", { reason });
    notifySystemd("STOPPING=1");
    await this.#teardown();
    this.#exit({ code, reason });
  }

  async #teardown(): Promise<void> {
    this.#stopping = true;
    for (const [sig, fn] of this.#signals) Deno.removeSignalListener(sig, fn);
    this.#signals = [];
    clearTimeout(this.#debounce);
    for (const t of this.#timers) clearInterval(t);
    this.#unsubscribe?.();
    this.#trace?.closeAll();
    for (const l of this.#listeners) await l.close().catch(() => {});
    await this.#reloading;
    this.#worker?.terminate(); // spawned early, never handed to the kernel plane
    this.#worker = undefined;
    if (this.#plane) await this.#plane.close();
    this.#guard?.close();
    await this.#audit?.close().catch(() => {});
    this.#ac.abort();
    await this.#services?.dispose().catch(() => {});
    await this.#sources?.dispose().catch(() => {});
  }

  /** `/v1/status`. */
  async status(): Promise<AgentStatus> {
    const a = this.#loaded.config.agent;
    const p = this.#current.payloads;
    const s: AgentStatus = {
      version: VERSION,
      pid: Deno.pid,
      startedAt: this.#startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.#startedAt.getTime()) / 1000),
      ready: this.#ready,
      device: a.kernelModuleDevice,
      dataPlane: { ...this.#plane.choice },
      controlSocket: a.controlSocket,
      trustDomain: p.load_config.trust_domain,
      policy: {
        revision: this.#revision,
        policies: p.load_policies.policies.length,
        services: Object.keys(p.load_sd_info).length,
        files: this.#current.files,
        warnings: this.#current.warnings.map(formatProblem),
      },
      plugins: this.#services.plugins(),
      pluginHealth: this.#services.pluginHealth(),
      traceSubscribers: this.#trace.subscribers,
      sources: this.#sources.status(),
    };
    if (!this.#ready) s.readyReason = this.#stopping ? "stopping" : "starting";
    if (a.metricsAddress) s.metricsAddress = a.metricsAddress;
    const lastReload = this.#lastReloadRecord();
    if (lastReload) s.policy.lastReload = lastReload;
    if (this.#guard) s.runtimeGuard = this.#guard.status();
    if (this.#audit) s.audit = this.#audit.status();
    if (!this.#stopping) Object.assign(s, await this.#plane.status());
    return s;
  }

  /** `/metrics`. */
  async metrics(): Promise<string> {
    const p = this.#current.payloads;
    const last = this.#lastReload ? Date.parse(this.#lastReload.at) / 1000 : undefined;
    const plane = this.#stopping ? { text: "" } : await this.#plane.metrics();
    const guard = (this.#guard?.metricsText() ?? "") + (this.#audit?.metricsText() ?? "");
    return renderMetrics(plane.link, {
      ready: this.#ready,
      policyRevision: this.#revision,
      policies: p.load_policies.policies.length,
      services: Object.keys(p.load_sd_info).length,
      reloads: this.#reloads,
      ...(last !== undefined ? { lastReloadSeconds: last } : {}),
      plugins: this.#services.plugins(),
      traceSubscribers: this.#trace.subscribers,
    }, agentMetrics.toPrometheus() + sourcesMetrics(this.#sources.status()) + plane.text + guard);
  }
}
