/**
 * Counters and answer-latency histograms of the kernel link, kept where the answers are written
 * (the kernel worker) and shipped to the control socket as plain JSON snapshots.
 *
 * @module
 */

/** Histogram upper bounds in milliseconds; the kernel's deadline is 1000 ms. */
export const LATENCY_BUCKETS_MS = [
  0.25,
  0.5,
  1,
  2,
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  600,
  750,
  1000,
] as const;

/** One histogram: cumulative-ready bucket counts (last = +Inf), sum and count. */
export interface HistogramSnapshot {
  buckets: number[];
  sum: number;
  count: number;
}

/** Commands counted under their own name; any other name a line carries is counted as `other`. */
export const COUNTED_COMMANDS: ReadonlySet<string> = new Set([
  "augment",
  "csr_sign",
  "log",
  "accept",
  "connect",
]);

/** The `command` label for `name`: one of {@linkcode COUNTED_COMMANDS} or `other` (bounded series). */
export function commandLabel(name: string): string {
  return COUNTED_COMMANDS.has(name) ? name : "other";
}

/** A plain-JSON copy of {@linkcode KernelStats}. */
export interface StatsSnapshot {
  /** `command` → `outcome` → count. */
  requests: Record<string, Record<string, number>>;
  /** `command` → answer latency (read → write) in ms. */
  latencyMs: Record<string, HistogramSnapshot>;
  /** `command` → answers written 1 s or more after the read (each one a kernel timeout). */
  deadlineMisses: Record<string, number>;
  /** Malformed kernel lines by reason (`not_json`, `bad_task`, `oversized`, … see codec.ts). */
  malformed: Record<string, number>;
  /** Of those, lines that got no answer, by why not (`no_id`, `ambiguous_id`, `message`, …). */
  malformedDropped: Record<string, number>;
  /** Requests read and not yet answered. */
  outstanding: number;
  /** Largest answer latency seen, ms. */
  maxLatencyMs: number;
}

/** What {@linkcode KernelStats.malformed} says about logging this line. */
export interface MalformedNote {
  /** True for the first line of this reason in the log interval: log it. */
  log: boolean;
  /** Lines of this reason not logged since the last one that was. */
  suppressed: number;
}

/** Options of {@linkcode KernelStats}. */
export interface KernelStatsOptions {
  /** Clock, ms (default `performance.now`). */
  now?: () => number;
  /** One log line per malformed reason per this interval, ms (default 60 000). */
  logIntervalMs?: number;
}

function plain<V, W>(m: Map<string, V>, f: (v: V) => W): Record<string, W> {
  // Own data properties, whatever the key: Object.fromEntries never invokes the __proto__ setter.
  return Object.fromEntries([...m].map(([k, v]) => [k, f(v)]));
}

/** Counters of the dispatcher. Keyed by bounded names only, in Maps (lines are hostile input). */
export class KernelStats {
  readonly #requests = new Map<string, Map<string, number>>();
  readonly #latency = new Map<string, HistogramSnapshot>();
  readonly #misses = new Map<string, number>();
  readonly #malformed = new Map<string, number>();
  readonly #dropped = new Map<string, number>();
  readonly #logged = new Map<string, { at: number; suppressed: number }>();
  readonly #now: () => number;
  readonly #logIntervalMs: number;
  #max = 0;
  outstanding = 0;

  constructor(options: KernelStatsOptions = {}) {
    this.#now = options.now ?? (() => performance.now());
    this.#logIntervalMs = options.logIntervalMs ?? 60_000;
  }

  /** Counts one request of `command` that ended with `outcome`, answered `latencyMs` after the read. */
  record(command: string, outcome: string, latencyMs?: number): void {
    const name = commandLabel(command);
    let byOutcome = this.#requests.get(name);
    if (!byOutcome) this.#requests.set(name, byOutcome = new Map());
    byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1);
    if (latencyMs === undefined) return;
    let h = this.#latency.get(name);
    if (!h) {
      h = { buckets: new Array(LATENCY_BUCKETS_MS.length + 1).fill(0), sum: 0, count: 0 };
      this.#latency.set(name, h);
    }
    let i = LATENCY_BUCKETS_MS.findIndex((b) => latencyMs <= b);
    if (i < 0) i = LATENCY_BUCKETS_MS.length;
    h.buckets[i]!++;
    h.sum += latencyMs;
    h.count++;
    if (latencyMs > this.#max) this.#max = latencyMs;
    if (latencyMs >= 1000) this.#misses.set(name, (this.#misses.get(name) ?? 0) + 1);
  }

  /**
   * Counts a kernel line that could not be used as it is, by `reason` (a fixed set, see codec.ts),
   * and, when it got no answer, by `dropped` (why not). Says whether to log it: once per reason
   * per interval, with the number of lines not logged since.
   */
  malformed(reason: string, dropped?: string): MalformedNote {
    this.#malformed.set(reason, (this.#malformed.get(reason) ?? 0) + 1);
    if (dropped !== undefined) this.#dropped.set(dropped, (this.#dropped.get(dropped) ?? 0) + 1);
    const now = this.#now();
    const last = this.#logged.get(reason);
    if (last && now - last.at < this.#logIntervalMs) {
      last.suppressed++;
      return { log: false, suppressed: last.suppressed };
    }
    this.#logged.set(reason, { at: now, suppressed: 0 });
    return { log: true, suppressed: last?.suppressed ?? 0 };
  }

  /** A deep copy, safe to post to another thread. */
  snapshot(): StatsSnapshot {
    return {
      requests: plain(this.#requests, (m) => plain(m, (n) => n)),
      latencyMs: plain(this.#latency, (h) => ({ ...h, buckets: [...h.buckets] })),
      deadlineMisses: plain(this.#misses, (n) => n),
      malformed: plain(this.#malformed, (n) => n),
      malformedDropped: plain(this.#dropped, (n) => n),
      outstanding: this.outstanding,
      maxLatencyMs: this.#max,
    };
  }
}
