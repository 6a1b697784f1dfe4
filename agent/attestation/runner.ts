/**
 * Runs the attestors for one task: in parallel, under a deadline budget, cached per process life.
 *
 * A collector that fails or has not answered when the budget runs out yields a warning and the
 * labels that are ready (the kernel fails open on a late answer, so partial labels beat none);
 * with `strict` the request fails instead. A late collector keeps running in the background up
 * to `collectorTimeoutMs` and its labels are merged into the cached entry, so the next request
 * for the process is complete. Nothing a collector does can throw out of here except the
 * `strict` {@linkcode AttestationError}.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Attestor, Clock, CollectFacts, Labels, TaskContext } from "../../plugins/types.ts";
import { systemClock } from "../../plugins/types.ts";
import { labelStrings, mergeLabels } from "../../plugins/attestor/_lib/labels.ts";
import { readStartTime } from "../../plugins/attestor/process/proc_files.ts";
import { logger } from "../log.ts";
import { AttestationCache, type CacheEntry, cacheKey, taskFingerprint } from "./cache.ts";
import { listPids, taskContextFromProc } from "../../plugins/attestor/_lib/task_from_proc.ts";
import { errorMessage } from "../errors.ts";
import { taskLabels } from "../../driver/answers.ts";
import { DeadlineQueue } from "../../driver/deadline_queue.ts";

/** Options of {@linkcode Attestation}. */
export interface AttestationOptions {
  /** How long a request waits for collectors (default 500 ms; the kernel allows 1 s in all). */
  budgetMs?: number;
  /** Fail the request when a collector fails or is late, instead of answering partially. */
  strict?: boolean;
  /** Hard limit for a late collector running in the background (default 5 s). */
  collectorTimeoutMs?: number;
  /** Lifetime of a complete cache entry (default 60 s). */
  cacheTtlMs?: number;
  /** Lifetime of an incomplete entry, after which collection is retried (default 5 s). */
  incompleteTtlMs?: number;
  /** Cache bound (default 16384 process lives). */
  cacheMaxEntries?: number;
  /** How often exited processes are swept out of the cache (default 10 s; 0 = never). */
  sweepIntervalMs?: number;
  /** Parallel collections while warming (default 2: warming must not starve requests). */
  warmConcurrency?: number;
  clock?: Clock;
  log?: Logger;
  procRoot?: string;
}

/** The answer for one task. */
export interface AugmentResult {
  labels: Labels;
  /** Sorted `name=value` strings, what the kernel gets. */
  strings: string[];
  warnings: string[];
  /** Served from the cache. */
  cached: boolean;
  /** Every collector answered. */
  complete: boolean;
}

/** A `strict` request that could not be answered completely. */
export class AttestationError extends Error {
  override name = "AttestationError";
  readonly warnings: readonly string[];
  constructor(message: string, warnings: readonly string[]) {
    super(message);
    this.warnings = warnings;
  }
}

type Outcome = { state: "pending" } | { state: "ok"; labels: Labels } | {
  state: "error";
  error: unknown;
  /** Labels a collector had despite failing (`PartialLabelsError` or any error with `labels`). */
  labels?: Labels;
};

function partialLabels(e: unknown, who: string): Labels | undefined {
  const l = (e as { labels?: unknown } | null)?.labels;
  if (l === undefined) return undefined;
  try {
    return validLabels(l, who);
  } catch {
    return undefined;
  }
}

function validLabels(raw: unknown, who: string): Labels {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new TypeError(
      `attestor(${who}) returned ${raw === null ? "null" : typeof raw}, not labels`,
    );
  }
  // Null prototype: a name like `__proto__` is an own property like any other (and plain
  // assignment costs less than defining each property, per attestor per request).
  const out: Labels = Object.create(null);
  for (const name in raw) {
    const values = (raw as Record<string, unknown>)[name];
    if (!Object.hasOwn(raw, name) || !Array.isArray(values)) continue;
    const v = values.filter((x): x is string => typeof x === "string" && x !== "");
    if (name !== "" && v.length) out[name] = v;
  }
  return out;
}

type Timer = ReturnType<typeof setTimeout>;

/** Handed to the attestors for a process gone before collection: they need not look again. */
const GONE: CollectFacts = Object.freeze({ startTime: null });

/** Collections started within this many ms share one hard-timeout signal (a burst's do). */
const HARD_EPOCH_MS = 100;

interface HardEpoch {
  until: number;
  signal: AbortSignal;
  timer: Timer;
  /** Its collections not settled yet: at 0 the timer goes. */
  running: number;
}

/** Attestation for the daemon and the CLI. */
export class Attestation {
  readonly #attestors: readonly Attestor[];
  readonly #budget: number;
  readonly #strict: boolean;
  readonly #collectorTimeout: number;
  readonly #ttl: number;
  readonly #incompleteTtl: number;
  readonly #warmConcurrency: number;
  readonly #sweepInterval: number;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #procRoot: string;
  readonly #shutdown = new AbortController();
  readonly #timers = new Set<Timer>();
  readonly #inflight = new Map<string, Promise<AugmentResult>>();
  readonly #background = new Set<Promise<unknown>>();
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  /**
   * The late collectors' hard timeout, shared by the collections started in one epoch: a signal,
   * `AbortSignal.any` and a timer per request were most of a burst's per-request work here.
   */
  #hard: HardEpoch | undefined;
  /** Every request's budget, behind one timer. */
  readonly #budgets = new DeadlineQueue(() => performance.now());
  /** The cache (exposed for tests and metrics). */
  readonly cache: AttestationCache;

  constructor(attestors: readonly Attestor[], options: AttestationOptions = {}) {
    this.#attestors = attestors;
    this.#budget = options.budgetMs ?? 500;
    this.#strict = options.strict ?? false;
    this.#collectorTimeout = Math.max(options.collectorTimeoutMs ?? 5000, this.#budget);
    this.#ttl = options.cacheTtlMs ?? 60_000;
    this.#incompleteTtl = options.incompleteTtlMs ?? 5000;
    this.#warmConcurrency = options.warmConcurrency ?? 2;
    this.#sweepInterval = options.sweepIntervalMs ?? 10_000;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log ?? logger("attestation");
    this.#procRoot = options.procRoot ?? "/proc";
    this.cache = new AttestationCache(options.cacheMaxEntries);
  }

  /** The attestors, in order (the daemon checks their health). */
  get attestors(): readonly Attestor[] {
    return this.#attestors;
  }

  /**
   * Starts the exited-process sweep and warms the cache in the background. Returns at once; the
   * returned promise (also awaited by {@linkcode dispose}) resolves with the number of processes
   * warmed.
   */
  start(options: { warm?: boolean } = {}): Promise<number> {
    if (this.#sweepInterval > 0 && this.#sweepTimer === undefined) {
      const id = setInterval(() => void this.sweep(), this.#sweepInterval);
      Deno.unrefTimer(id);
      this.#sweepTimer = id;
    }
    if (options.warm === false) return Promise.resolve(0);
    return this.#track(this.warm());
  }

  /** Drops cache entries of processes that exited or whose pid now names another process. */
  sweep(): Promise<number> {
    return this.cache.sweep((pid) => readStartTime(pid, this.#procRoot), this.#clock.now());
  }

  /** Collects labels for every running process (user space, not kernel threads). */
  async warm(): Promise<number> {
    const pids = await listPids(this.#procRoot);
    let next = 0;
    let warmed = 0;
    const worker = async () => {
      while (next < pids.length && !this.#shutdown.signal.aborted) {
        const pid = pids[next++]!;
        const task = taskContextFromProc(pid, this.#procRoot);
        if (!task || task.command_path === "") continue;
        try {
          await this.#augment(task, this.#shutdown.signal, true);
          warmed++;
          // Yield between processes: warming must never delay a kernel answer.
          await new Promise((r) => setTimeout(r, 2));
        } catch {
          // strict mode or a vanished process: warming is best effort.
        }
      }
    };
    await Promise.all(Array.from({ length: this.#warmConcurrency }, worker));
    this.#log.debug("Attestation cache warmed", { processes: warmed, entries: this.cache.size });
    return warmed;
  }

  /**
   * Labels for the kernel's `augment`: sorted `name=value`. Never throws except
   * {@linkcode AttestationError} in strict mode; warnings are logged.
   */
  async augmentLabels(task: TaskContext, signal?: AbortSignal): Promise<string[]> {
    const strings = (await this.augment(task, signal)).strings;
    // What the kernel's task context proves is always there, even when the attestor that also
    // reports it is late or failed (else a valid identity is refused as "not assignable").
    const names = new Set(strings.map((l) => l.slice(0, l.indexOf("="))));
    const missing = taskLabels(task).filter((l) => !names.has(l.slice(0, l.indexOf("="))));
    return missing.length === 0 ? strings : [...strings, ...missing].sort();
  }

  /** Labels, warnings and cache facts for `task`. */
  augment(task: TaskContext, signal?: AbortSignal): Promise<AugmentResult> {
    return this.#augment(task, signal, false);
  }

  /** `quiet`: the agent's own warm-up, whose incomplete collections are not the user's concern. */
  async #augment(task: TaskContext, signal: AbortSignal | undefined, quiet: boolean) {
    const startedAt = performance.now();
    const startTime = await readStartTime(task.pid, this.#procRoot);
    const fingerprint = taskFingerprint(task);
    if (startTime === undefined) {
      // Exited already: label what the kernel told us; nothing to cache.
      return this.#collect(task, GONE, signal, startedAt, quiet);
    }
    const key = cacheKey(task.pid, startTime, task.cgroup_path);
    const hit = this.cache.get(key, fingerprint, this.#clock.now());
    if (hit) return this.#fromEntry(hit);
    const flightKey = `${key}\0${fingerprint}`;
    const pending = this.#inflight.get(flightKey);
    if (pending) return pending;
    const facts: CollectFacts = { startTime };
    const run = this.#collect(
      task,
      facts,
      signal,
      startedAt,
      quiet,
      (labels, warnings, complete) => {
        const entry: CacheEntry = {
          labels,
          warnings,
          complete,
          fingerprint,
          pid: task.pid,
          startTime,
          expiresAt: this.#clock.now() + (complete ? this.#ttl : this.#incompleteTtl),
        };
        this.cache.set(key, entry);
      },
    ).finally(() => this.#inflight.delete(flightKey));
    this.#inflight.set(flightKey, run);
    return run;
  }

  #fromEntry(e: CacheEntry): AugmentResult {
    return {
      labels: e.labels,
      strings: labelStrings(e.labels),
      warnings: e.warnings,
      cached: true,
      complete: e.complete,
    };
  }

  #collect(
    task: TaskContext,
    facts: CollectFacts,
    signal: AbortSignal | undefined,
    startedAt: number,
    quiet: boolean,
    store?: (labels: Labels, warnings: string[], complete: boolean) => void,
  ): Promise<AugmentResult> {
    const epoch = this.#hardEpoch(startedAt);
    const collectorSignal = epoch.signal;
    const outcomes: Outcome[] = this.#attestors.map(() => ({ state: "pending" }));
    const all = Promise.all(this.#attestors.map(async (a, i) => {
      try {
        outcomes[i] = {
          state: "ok",
          labels: validLabels(await a.collect(task, collectorSignal, facts), a.name),
        };
      } catch (error) {
        const labels = partialLabels(error, a.name);
        outcomes[i] = labels ? { state: "error", error, labels } : { state: "error", error };
      }
    }));
    void all.then(() => this.#settled(epoch));

    return new Promise<AugmentResult>((resolve, reject) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        this.#budgets.cancel(budget);
        signal?.removeEventListener("abort", finish);
        const snapshot = this.#snapshot(outcomes);
        const complete = snapshot.pending.length === 0;
        if (!complete) {
          // Let late collectors finish in the background and complete the cached entry.
          this.#track(all.then(() => {
            const late = this.#snapshot(outcomes);
            store?.(late.labels, late.warnings, late.pending.length === 0);
          }));
        }
        if (snapshot.warnings.length) {
          const props = { pid: task.pid, warnings: snapshot.warnings };
          if (quiet) this.#log.debug("Attestation incomplete while warming the cache", props);
          else this.#log.warn("Attestation incomplete", props);
        }
        if (this.#strict && snapshot.warnings.length) {
          return reject(
            new AttestationError(
              `Cannot attest pid ${task.pid} (strict): ${snapshot.warnings.join("; ")}`,
              snapshot.warnings,
            ),
          );
        }
        store?.(snapshot.labels, snapshot.warnings, complete);
        resolve({
          labels: snapshot.labels,
          strings: labelStrings(snapshot.labels),
          warnings: snapshot.warnings,
          cached: false,
          complete,
        });
      };
      const budget = this.#budgets.add(startedAt + this.#budget, finish);
      if (signal?.aborted) return finish();
      signal?.addEventListener("abort", finish, { once: true });
      all.then(finish);
    });
  }

  #snapshot(outcomes: Outcome[]): { labels: Labels; warnings: string[]; pending: string[] } {
    const sets: Labels[] = [];
    const warnings: string[] = [];
    const pending: string[] = [];
    outcomes.forEach((o, i) => {
      const name = this.#attestors[i]!.name;
      if (o.state === "ok") sets.push(o.labels);
      else if (o.state === "error") {
        if (o.labels) {
          sets.push(o.labels);
          pending.push(name);
          warnings.push(`attestor(${name}) partial: ${errorMessage(o.error)}`);
        } else warnings.push(`attestor(${name}) failed: ${errorMessage(o.error)}`);
      } else {
        pending.push(name);
        warnings.push(`attestor(${name}) did not answer within ${this.#budget} ms`);
      }
    });
    return { labels: mergeLabels(...sets), warnings, pending };
  }

  /** The hard-timeout epoch for a collection started at `startedAt` (performance.now()). */
  #hardEpoch(startedAt: number): HardEpoch {
    let h = this.#hard;
    if (!h || startedAt >= h.until || h.signal.aborted) {
      const hard = new AbortController();
      // Fires a collector timeout after the epoch's end: no collection of it is cut short.
      const timer = this.#timer(() => {
        hard.abort(new Error(`collector timeout ${this.#collectorTimeout} ms`));
      }, this.#collectorTimeout + HARD_EPOCH_MS);
      const signal = AbortSignal.any([hard.signal, this.#shutdown.signal]);
      this.#hard = h = { until: startedAt + HARD_EPOCH_MS, signal, timer, running: 0 };
    }
    h.running++;
    return h;
  }

  #settled(h: HardEpoch): void {
    if (--h.running > 0) return;
    this.#clear(h.timer);
    if (this.#hard === h) this.#hard = undefined;
  }

  #timer(fn: () => void, ms: number): Timer {
    const id = setTimeout(() => {
      this.#timers.delete(id);
      fn();
    }, ms);
    this.#timers.add(id);
    return id;
  }

  #clear(id: Timer) {
    clearTimeout(id);
    this.#timers.delete(id);
  }

  #track<T>(p: Promise<T>): Promise<T> {
    const tracked = p.finally(() => this.#background.delete(tracked));
    this.#background.add(tracked);
    return tracked;
  }

  /** Stops warming, aborts late collectors, clears timers and disposes the attestors. */
  async dispose(): Promise<void> {
    this.#shutdown.abort(new Error("attestation disposed"));
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
    for (const id of this.#timers) clearTimeout(id);
    this.#timers.clear();
    await Promise.allSettled([...this.#background]);
    for (const a of [...this.#attestors].reverse()) {
      try {
        await a.dispose?.();
      } catch (e) {
        this.#log.warn("Cannot dispose attestor", { attestor: a.name, error: errorMessage(e) });
      }
    }
  }
}
