/**
 * The set of configured policy sources, as the daemon uses it: starts every source, checks it
 * once, merges everything into one validated, compiled snapshot, then follows changes (debounced)
 * and emits a new snapshot only for a merged set that is entirely valid. A source that fails, or
 * delivers something invalid, keeps its last good revision in force; every rejected item is logged
 * with source, file, line, item and field, and the status says what is in force and why not more.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { type LoadedPlugins, loadPlugins } from "../../plugins/loader.ts";
import type { AnyPluginDefinition } from "../../plugins/registry.ts";
import type {
  DeliveredAudit,
  PolicySourceInstance,
  SourceCheck,
} from "../../plugins/policy_source/types.ts";
import type { LoadedRuleSet } from "../audit/delivered_rules.ts";
import { type Clock, systemClock } from "../../plugins/types.ts";
import { formatProblem, type Problem, ValidationError } from "../errors.ts";
import { logger } from "../log.ts";
import { type HostResolver, resolveHostnames, systemResolver } from "../policy/resolve.ts";
import type { Resolutions } from "../policy/services.ts";
import { serviceHostnames } from "../policy/services.ts";
import type { AcceptedSource, CompiledSet } from "./compile_set.ts";
import { PolicyWorker } from "./compile_worker.ts";
import { IssuanceLoader } from "./issuance_loader.ts";
import { entryCountProblem, estimatePolicyEntries } from "../policy/limits.ts";
import type { PolicySource } from "../policy/source.ts";
import { type LabelTarget, sourceProblem } from "./parse_delivery.ts";
import type { PolicySnapshot } from "./snapshot.ts";
import type { SourceSpec } from "./spec.ts";

export type { PolicySnapshot } from "./snapshot.ts";
import type { SourcesStatus, SourceStatus } from "./status.ts";

/** Options of {@linkcode PolicySources.start}. */
export interface PolicySourcesOptions {
  specs: readonly SourceSpec[];
  trustDomain: string;
  /** Hostname lookup for service addresses (default: /etc/hosts, then DNS). */
  resolver?: HostResolver;
  /** Quiet time after a delivery before merging, ms (default 100). */
  debounceMs?: number;
  /** Longest the first check of each source may take, ms (default 60 s). */
  startTimeoutMs?: number;
  /**
   * Whether a required (not `optional`) source that fails or is invalid at startup fails the
   * start (default true). `camblet-agent sources --check` turns it off to report everything.
   */
  strict?: boolean;
  clock?: Clock;
  log?: Logger;
  /** Plugin registry (tests). */
  registry?: readonly AnyPluginDefinition[];
  /** Aborted when the agent stops (plugins get it). */
  signal?: AbortSignal;
  /**
   * Loads delivered syscall audit rules (`audit/`); throws to refuse the revision. Without it, or
   * when it resolves undefined (the audit is off), they are not loaded and a warning says so.
   */
  loadAudit?: (audit: DeliveredAudit, where: string) => Promise<LoadedRuleSet | undefined>;
}

interface Tracked {
  spec: SourceSpec;
  instance: PolicySourceInstance;
  status: SourceStatus;
  accepted?: AcceptedSource;
  pending?:
    | { check: Extract<SourceCheck, { kind: "delivery" }>; parsed: AcceptedSource }
    | undefined;
  lastLogged?: string | undefined;
  /** The check being recorded (parsing may take a while; records stay in order). */
  recording: Promise<unknown>;
  /** Audit rules of the revision in force. */
  audit?: LoadedRuleSet | undefined;
}

/** Compiled entries of `policies`: one per policy and one per egress entry. */
function entriesOf(policies: readonly PolicySource[]): number {
  let n = 0;
  for (const p of policies) n += 1 + (p.policy.egress?.length ?? 0);
  return n;
}

const EMPTY_ITEMS = { policies: 0, services: 0, issuancePolicy: false };

/** Every configured policy source, merged. Create with {@linkcode PolicySources.start}. */
export class PolicySources {
  readonly #o: PolicySourcesOptions;
  readonly #plugins: LoadedPlugins;
  readonly #tracked: Tracked[];
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #labels = new Map<string, LabelTarget>();
  readonly #loader = new IssuanceLoader();
  readonly #listeners = new Set<(s: PolicySnapshot) => void>();
  /** Parses and compiles off this thread (it answers the kernel, the proxy, the control socket). */
  readonly #worker: PolicyWorker;
  #set!: CompiledSet;
  #snapshot!: PolicySnapshot;
  #applying: Promise<unknown> = Promise.resolve();
  #debounce: ReturnType<typeof setTimeout> | undefined;
  #disposed = false;

  private constructor(o: PolicySourcesOptions, plugins: LoadedPlugins) {
    this.#o = o;
    this.#plugins = plugins;
    this.#clock = o.clock ?? systemClock;
    this.#log = o.log ?? logger("sources");
    this.#worker = new PolicyWorker({ log: this.#log });
    // The first set is read before anything is served: here is faster than a cold worker.
    this.#worker.offThread = false;
    const instances = plugins.of("policySource");
    this.#tracked = o.specs.map((spec, i) => ({
      spec,
      instance: instances[i]!,
      status: {
        id: spec.id,
        type: spec.type,
        location: instances[i]!.location,
        optional: spec.optional,
        state: "starting",
        consecutiveFailures: 0,
        checks: {},
        items: { ...EMPTY_ITEMS },
      },
      recording: Promise.resolve(),
    }));
  }

  /**
   * Loads the source plugins (all or nothing), checks every source once and builds the first
   * snapshot, then follows changes. Throws `PluginLoadError` for bad plugin config, and
   * {@linkcode ValidationError} (every problem, with its source) when a required source fails or
   * is invalid.
   */
  static async start(o: PolicySourcesOptions): Promise<PolicySources> {
    const signal = o.signal ?? new AbortController().signal;
    const plugins = await loadPlugins(o.specs.map((s) => s.selection), {
      enforce: ["policySource"],
      ...(o.registry ? { registry: o.registry } : {}),
      context: (kind, name) => ({
        log: logger("plugin", kind, name),
        clock: o.clock ?? systemClock,
        trustDomain: o.trustDomain,
        signal,
      }),
    });
    const sources = new PolicySources(o, plugins);
    try {
      await sources.#initial();
    } catch (e) {
      sources.#worker.close();
      await plugins.dispose();
      throw e;
    }
    return sources;
  }

  async #initial(): Promise<void> {
    const deadline = AbortSignal.timeout(this.#o.startTimeoutMs ?? 60_000);
    const signal = this.#o.signal ? AbortSignal.any([this.#o.signal, deadline]) : deadline;
    const results = await Promise.all(this.#tracked.map((t) => t.instance.check(signal)));
    await Promise.all(results.map((r, i) => this.#recordInOrder(this.#tracked[i]!, r)));
    const fatal = (t: Tracked) =>
      (this.#o.strict ?? true) && !t.spec.optional &&
      (t.status.state === "failing" || t.status.state === "rejected");
    const problems = () =>
      this.#tracked.filter(fatal).flatMap((t) => this.#lastProblems.get(t.spec.id) ?? []);
    if (problems().length) throw new ValidationError("Cannot load policy sources", problems());
    this.#inForce(await this.#compile([]));
    await this.#applyPending();
    if (problems().length) throw new ValidationError("Cannot load policy sources", problems());
    if (!this.#snapshot) this.#publish();
    this.#worker.offThread = true;
    for (const t of this.#tracked) t.instance.watch((r) => this.#onCheck(t, r));
  }

  #lastProblems = new Map<string, Problem[]>();

  #now(): string {
    return new Date(this.#clock.now()).toISOString();
  }

  #count(t: Tracked, outcome: string): void {
    t.status.checks[outcome] = (t.status.checks[outcome] ?? 0) + 1;
  }

  #fail(t: Tracked, state: "failing" | "rejected", problems: Problem[], revision?: string) {
    const s = t.status;
    s.state = state;
    s.consecutiveFailures++;
    s.lastError = {
      at: this.#now(),
      ...(revision !== undefined ? { revision } : {}),
      problems: problems.map(formatProblem),
    };
    this.#lastProblems.set(t.spec.id, problems);
    this.#count(t, state === "failing" ? "failure" : "rejected");
    // A source that keeps failing the same way is logged once, then at debug level.
    const key = `${state}\n${revision}\n${s.lastError.problems.join("\n")}`;
    const repeat = key === t.lastLogged;
    t.lastLogged = key;
    const props = {
      source: t.spec.id,
      revision: s.revision ?? "(none)",
      problems: problems.length,
    };
    const what = state === "failing"
      ? "Policy source check failed; its last good revision stays in force"
      : `Policy source revision ${revision} rejected; its last good revision stays in force`;
    if (repeat) this.#log.debug(what, props);
    else {
      this.#log.error(what, props);
      for (const p of problems) this.#log.error(`Rejected: ${formatProblem(p)}`);
    }
  }

  /** {@linkcode #record}, one at a time per source (a later check never lands first). */
  #recordInOrder(t: Tracked, r: SourceCheck): Promise<void> {
    const run = t.recording.then(() => this.#record(t, r));
    t.recording = run.catch((e) => this.#log.error("Cannot read policy source", { error: e }));
    return run;
  }

  /** Updates status for a check result; parses a delivery into `pending`. */
  async #record(t: Tracked, r: SourceCheck): Promise<void> {
    const s = t.status;
    s.lastCheckAt = this.#now();
    if (r.kind === "failure") {
      this.#fail(t, "failing", r.problems.map((p) => sourceProblem(t.spec, p)));
      return;
    }
    if (r.kind === "unchanged") {
      this.#count(t, "unchanged");
      s.lastSuccessAt = s.lastCheckAt;
      // Unchanged after a rejected revision is still that revision.
      if (s.state !== "rejected" || s.lastError?.revision !== r.revision) {
        if (s.state !== "starting" || t.accepted) s.state = "ok";
        s.consecutiveFailures = 0;
      }
      return;
    }
    this.#count(t, "delivery");
    s.lastSuccessAt = s.lastCheckAt;
    const d = r.delivery;
    // A set that cannot fit the kernel is refused from its text, before any parsing.
    const tooMany = this.#entryEstimateProblem(t, d);
    if (tooMany) {
      this.#fail(t, "rejected", [tooMany], d.revision);
      return;
    }
    const parsed = await this.#worker.parse(t.spec, d, this.#o.trustDomain, this.#labels);
    if (parsed.problems.length) {
      this.#fail(t, "rejected", parsed.problems, d.revision);
      return;
    }
    t.pending = { check: r, parsed: { spec: t.spec, parsed } };
  }

  /** The other sources' accepted entries plus this delivery's estimate, when it cannot fit. */
  #entryEstimateProblem(
    t: Tracked,
    d: Extract<SourceCheck, { kind: "delivery" }>["delivery"],
  ): Problem | undefined {
    let biggest: { path: string; n: number } | undefined;
    let estimate = 0;
    for (const f of d.files) {
      if (f.kind !== "policies") continue;
      const n = estimatePolicyEntries(f.text);
      estimate += n;
      if (!biggest || n > biggest.n) biggest = { path: f.path, n };
    }
    const others = this.#tracked.reduce(
      (sum, x) => x === t || !x.accepted ? sum : sum + entriesOf(x.accepted.parsed.policies),
      0,
    );
    const why = entryCountProblem(estimate + others);
    if (!why || !biggest) return undefined;
    const with_ = others ? ` (with the ${others} in force from other sources)` : "";
    return sourceProblem(t.spec, {
      file: biggest.path,
      message: `refused before parsing: holds about ${biggest.n} policy and egress entries ` +
        `(counted from its text)${with_}; the set's ${why}`,
    });
  }

  #onCheck(t: Tracked, r: SourceCheck): void {
    if (this.#disposed) return;
    void this.#recordInOrder(t, r).then(() => {
      if (t.pending && !this.#disposed) {
        clearTimeout(this.#debounce);
        this.#debounce = setTimeout(() => void this.#queueApply(), this.#o.debounceMs ?? 100);
      }
    }, () => {});
  }

  #queueApply(): Promise<void> {
    const run = this.#applying.then(() => this.#applyPending());
    this.#applying = run.catch((e) => this.#log.error("Cannot apply policy sources", { error: e }));
    return run;
  }

  /** Addresses of the hostnames in the set in force; only new names are looked up. */
  #known = new Map<string, readonly string[]>();

  async #resolve(names: string[], fresh = false): Promise<Resolutions> {
    const lookup = fresh ? names : names.filter((n) => !this.#known.has(n));
    const found = lookup.length
      ? await resolveHostnames(lookup, this.#o.resolver ?? systemResolver())
      : { addresses: new Map<string, readonly string[]>(), errors: new Map<string, string>() };
    const addresses = new Map<string, readonly string[]>();
    for (const n of names) {
      const a = found.addresses.get(n) ?? (fresh ? undefined : this.#known.get(n));
      if (a) addresses.set(n, a);
    }
    return { addresses, ...(found.errors ? { errors: found.errors } : {}) };
  }

  /** Compiles `accepted` off this thread; hostnames are looked up here (`fresh`: again). */
  async #compile(accepted: readonly AcceptedSource[], fresh = false): Promise<CompiledSet> {
    const services = accepted.flatMap((a) => a.parsed.services);
    const resolutions = await this.#resolve(serviceHostnames(services), fresh);
    return await this.#worker.compile(accepted, this.#o.trustDomain, resolutions, this.#labels);
  }

  #inForce(set: CompiledSet): void {
    this.#set = set;
    this.#known = new Map(set.resolutions.addresses);
  }

  /** Tries each pending delivery in declaration order; accepts those that keep the set valid. */
  async #applyPending(): Promise<void> {
    let changed = false;
    for (const t of this.#tracked) {
      const pending = t.pending;
      if (!pending || this.#disposed) continue;
      t.pending = undefined;
      const d = pending.check.delivery;
      const candidate = pending.parsed;
      if (d.opa) {
        try {
          candidate.issuance = await this.#loader.load(d.opa, t.spec.entrypoint);
        } catch (e) {
          const p = sourceProblem(t.spec, { file: d.opa.path, message: (e as Error).message });
          this.#fail(t, "rejected", [p], d.revision);
          continue;
        }
      }
      let audit: LoadedRuleSet | undefined;
      if (d.audit) {
        const refuse = (message: string, file = "audit/") =>
          this.#fail(t, "rejected", [sourceProblem(t.spec, { file, message })], d.revision);
        const other = this.#tracked.find((x) => x !== t && x.audit);
        if (other) {
          refuse(`${other.spec.id} already delivers the audit rules; one source may`);
          continue;
        }
        try {
          audit = await this.#o.loadAudit?.(d.audit, `${t.spec.id} revision ${d.revision}`);
        } catch (e) {
          refuse((e as Error).message);
          continue;
        }
        if (!audit) {
          this.#log.warn(
            "Audit rules delivered, not loaded: the syscall audit is off (agent.audit.enabled)",
            { source: t.spec.id, revision: d.revision },
          );
        }
      }
      const accepted = this.#tracked.map((x) => x === t ? candidate : x.accepted)
        .filter((a): a is AcceptedSource => a !== undefined);
      const entries = accepted.reduce((n, a) => n + entriesOf(a.parsed.policies), 0);
      const tooMany = entryCountProblem(entries);
      if (tooMany) {
        const message = `refused before compiling: the merged set's ${tooMany}`;
        this.#fail(t, "rejected", [sourceProblem(t.spec, { message })], d.revision);
        continue;
      }
      const set = await this.#compile(accepted);
      if (set.problems.length) {
        this.#fail(t, "rejected", set.problems, d.revision);
        continue;
      }
      t.accepted = candidate;
      t.audit = audit;
      this.#inForce(set);
      changed = true;
      const s = t.status;
      s.state = "ok";
      s.consecutiveFailures = 0;
      s.revision = d.revision;
      s.acceptedAt = this.#now();
      s.items = {
        policies: candidate.parsed.policies.length,
        services: candidate.parsed.services.length,
        issuancePolicy: candidate.issuance !== undefined,
      };
      if (audit) s.items.auditRules = true;
      t.lastLogged = undefined;
      this.#log.info("Policy source revision accepted", {
        source: t.spec.id,
        revision: d.revision,
        policies: s.items.policies,
        services: s.items.services,
      });
      for (const w of d.warnings) this.#log.warn(formatProblem(sourceProblem(t.spec, w)));
      void Promise.resolve(t.instance.accepted?.(d.revision)).catch(() => {});
    }
    if (changed || !this.#snapshot) this.#publish();
  }

  #publish(): void {
    const set = this.#set;
    const sources: Record<string, string> = {};
    for (const t of this.#tracked) if (t.status.revision) sources[t.spec.id] = t.status.revision;
    const snapshot: PolicySnapshot = {
      revision: (this.#snapshot?.revision ?? 0) + 1,
      at: this.#now(),
      payloads: set.payloads,
      provenance: set.provenance,
      warnings: set.warnings,
      sources,
      files: set.files,
      policies: set.policies,
    };
    if (set.issuance) {
      snapshot.issuance = set.issuance;
      snapshot.issuanceHook = set.issuance.hook;
    }
    const auditOwner = this.#tracked.find((t) => t.audit);
    if (auditOwner) {
      snapshot.audit = {
        ...auditOwner.audit!,
        source: auditOwner.spec.id,
        revision: auditOwner.status.revision ?? "",
      };
    }
    this.#snapshot = snapshot;
    for (const fn of this.#listeners) {
      try {
        fn(snapshot);
      } catch (e) {
        this.#log.error("Policy snapshot listener failed", { error: e });
      }
    }
  }

  /** The snapshot in force (always a valid set). */
  get current(): PolicySnapshot {
    return this.#snapshot;
  }

  /** Calls `fn` with every new snapshot; returns the unsubscribe function. */
  subscribe(fn: (s: PolicySnapshot) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Checks every source now (SIGHUP) and applies what changed; resolves with the snapshot. */
  async refresh(): Promise<PolicySnapshot> {
    const results = await Promise.all(this.#tracked.map((t) => t.instance.check()));
    await Promise.all(results.map((r, i) => this.#recordInOrder(this.#tracked[i]!, r)));
    clearTimeout(this.#debounce);
    await this.#queueApply();
    return this.#snapshot;
  }

  /**
   * Looks service hostnames up again and recompiles; a new snapshot only when the payloads
   * change. A hostname that no longer resolves keeps the last good set (the problems are returned
   * and logged).
   */
  async reresolve(): Promise<Problem[]> {
    let problems: Problem[] = [];
    const run = this.#applying.then(async () => {
      const accepted = this.#tracked.flatMap((t) => t.accepted ? [t.accepted] : []);
      // Only hostnames can change the compiled set here.
      if (!serviceHostnames(accepted.flatMap((a) => a.parsed.services)).length) return;
      const set = await this.#compile(accepted, true);
      problems = set.problems;
      if (problems.length) {
        this.#log.error("Service hostnames no longer resolve; the last good set stays in force", {
          problems: problems.length,
        });
        for (const p of problems) this.#log.error(`Rejected: ${formatProblem(p)}`);
        return;
      }
      const before = JSON.stringify(this.#set.payloads.load_sd_info);
      this.#inForce(set);
      if (JSON.stringify(set.payloads.load_sd_info) !== before) this.#publish();
    });
    this.#applying = run.catch(() => {});
    await run;
    return problems;
  }

  /** Waits until deliveries received so far are merged (tests, benchmarks). */
  async settled(): Promise<void> {
    await Promise.all(this.#tracked.map((t) => t.recording));
    if (this.#tracked.some((t) => t.pending)) {
      clearTimeout(this.#debounce);
      await this.#queueApply();
    }
    await this.#applying;
  }

  /** For `/v1/status`, `/metrics` and `camblet-agent sources`. */
  status(): SourcesStatus {
    const s = this.#snapshot;
    const out: SourcesStatus = {
      revision: s.revision,
      appliedAt: s.at,
      warnings: s.warnings.map(formatProblem),
      sources: this.#tracked.map((t) => structuredClone(t.status)),
    };
    if (s.issuance) {
      const { source, revision, path, entrypoint } = s.issuance;
      out.issuance = { source, revision, path, entrypoint };
    }
    if (s.audit) {
      const { source, revision, id, kind } = s.audit;
      out.audit = { source, revision, id, kind };
    }
    return out;
  }

  /** Stops every source; never throws. */
  async dispose(): Promise<void> {
    this.#disposed = true;
    clearTimeout(this.#debounce);
    await Promise.all(this.#tracked.map((t) => t.recording));
    await this.#applying;
    this.#worker.close();
    await this.#plugins.dispose();
  }
}
