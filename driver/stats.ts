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

/** A plain-JSON copy of {@linkcode KernelStats}. */
export interface StatsSnapshot {
  /** `command` → `outcome` → count. */
  requests: Record<string, Record<string, number>>;
  /** `command` → answer latency (read → write) in ms. */
  latencyMs: Record<string, HistogramSnapshot>;
  /** `command` → answers written 1 s or more after the read (each one a kernel timeout). */
  deadlineMisses: Record<string, number>;
  /** Malformed kernel lines by kind (`json`, `field`, `oversized`, `missing_id`). */
  malformed: Record<string, number>;
  /** Requests read and not yet answered. */
  outstanding: number;
  /** Largest answer latency seen, ms. */
  maxLatencyMs: number;
}

/** Counters of the dispatcher. */
export class KernelStats {
  #requests: Record<string, Record<string, number>> = {};
  #latency: Record<string, HistogramSnapshot> = {};
  #misses: Record<string, number> = {};
  #malformed: Record<string, number> = {};
  #max = 0;
  outstanding = 0;

  /** Counts one request of `command` that ended with `outcome`, answered `latencyMs` after the read. */
  record(command: string, outcome: string, latencyMs?: number): void {
    const byOutcome = this.#requests[command] ??= {};
    byOutcome[outcome] = (byOutcome[outcome] ?? 0) + 1;
    if (latencyMs === undefined) return;
    const h = this.#latency[command] ??= {
      buckets: new Array(LATENCY_BUCKETS_MS.length + 1).fill(0),
      sum: 0,
      count: 0,
    };
    let i = LATENCY_BUCKETS_MS.findIndex((b) => latencyMs <= b);
    if (i < 0) i = LATENCY_BUCKETS_MS.length;
    h.buckets[i]!++;
    h.sum += latencyMs;
    h.count++;
    if (latencyMs > this.#max) this.#max = latencyMs;
    if (latencyMs >= 1000) this.#misses[command] = (this.#misses[command] ?? 0) + 1;
  }

  /** Counts a kernel line that could not be used. */
  malformed(kind: string): void {
    this.#malformed[kind] = (this.#malformed[kind] ?? 0) + 1;
  }

  /** A deep copy, safe to post to another thread. */
  snapshot(): StatsSnapshot {
    return structuredClone({
      requests: this.#requests,
      latencyMs: this.#latency,
      deadlineMisses: this.#misses,
      malformed: this.#malformed,
      outstanding: this.outstanding,
      maxLatencyMs: this.#max,
    });
  }
}
