/**
 * Bounded work in flight for the kernel worker's calls to the main thread. A burst of `csr_sign`
 * would otherwise put every request on the main thread at once, where each waits behind all the
 * others and all of them miss the deadline together. The gate lets `limit` calls run; the rest
 * wait in order, and one that has waited `maxWaitMs` is turned away at once with
 * {@linkcode OverloadedError} (the dispatcher answers it with a refusal, early, instead of at the
 * watchdog or late). A call that, by the recent pace of the calls, would wait longer than that is
 * turned away as it arrives: under a burst the refusals go out first, while there is most time.
 * The pace is the time between completions while the gate stayed full (what a waiting call
 * sees); a call's own time at full concurrency divided by the limit is only the first guess, and
 * overstates it when the calls overlap (signatures run on other threads).
 *
 * @module
 */

/** A call the gate turned away: it could not start in time. */
export class OverloadedError extends Error {
  override name = "OverloadedError";
}

/** Options of {@linkcode CallGate}. */
export interface CallGateOptions {
  /** Calls running at once (default 32). */
  limit?: number;
  /** Longest wait for a slot before the call is turned away, ms (default 300). */
  maxWaitMs?: number;
  now?: () => number;
}

interface Waiting {
  at: number;
  start: () => void;
  reject: (e: Error) => void;
}

/** Runs at most `limit` calls at once; turns away calls that waited too long. */
export class CallGate {
  readonly #limit: number;
  readonly #maxWait: number;
  readonly #now: () => number;
  #running = 0;
  #queue: Waiting[] = [];
  #head = 0;
  #sweep: ReturnType<typeof setInterval> | undefined;
  /** Recent time per call at full concurrency (ms, moving average); undefined until measured. */
  #callMs: number | undefined;
  /** Recent time between completions with the gate full (ms, moving average). */
  #paceMs: number | undefined;
  /** When the gate was last refilled to full by a completion (start of a pace sample). */
  #fullSince: number | undefined;
  /** Calls turned away so far. */
  turnedAway = 0;

  constructor(options: CallGateOptions = {}) {
    this.#limit = options.limit ?? 32;
    this.#maxWait = options.maxWaitMs ?? 300;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Calls waiting for a slot. */
  get waiting(): number {
    return this.#queue.length - this.#head;
  }

  /** Runs `fn` when a slot is free (at once if one is). */
  run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#running < this.#limit && this.waiting === 0) return this.#start(fn);
    // Its expected wait: one call's time for every `limit` calls ahead of it. Turned away now
    // only when clearly hopeless (1.5 times the limit): the pace is an estimate, the wait exact.
    const ahead = this.waiting + 1;
    const pace = this.#paceMs ?? (this.#callMs === undefined ? 0 : this.#callMs / this.#limit);
    const expected = ahead * pace;
    if (expected > 1.5 * this.#maxWait) {
      this.turnedAway++;
      return Promise.reject(
        new OverloadedError(
          `would not start within ${this.#maxWait} ms: ${ahead} calls ahead, ` +
            `one every ${pace.toFixed(1)} ms`,
        ),
      );
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({
        at: this.#now(),
        start: () => this.#start(fn).then(resolve, reject),
        reject,
      });
      // While calls wait, look at the oldest every 25 ms: a full gate frees no slot to check on.
      this.#sweep ??= setInterval(() => this.#expire(), 25);
    });
  }

  #start<T>(fn: () => Promise<T>): Promise<T> {
    this.#running++;
    const started = this.#now();
    const full = this.#running === this.#limit;
    let p: Promise<T>;
    try {
      p = fn();
    } catch (e) {
      p = Promise.reject(e);
    }
    return p.finally(() => {
      // Only calls that ran with the gate full tell how fast a waiting call moves.
      const now = this.#now();
      if (full) {
        const ms = now - started;
        this.#callMs = this.#callMs === undefined ? ms : this.#callMs * 0.8 + ms * 0.2;
      }
      if (this.#running === this.#limit && this.#fullSince !== undefined) {
        const ms = now - this.#fullSince;
        this.#paceMs = this.#paceMs === undefined ? ms : this.#paceMs * 0.8 + ms * 0.2;
      }
      this.#running--;
      this.#next();
      this.#fullSince = this.#running === this.#limit ? now : undefined;
    });
  }

  #expire(): void {
    const limit = this.#now() - this.#maxWait;
    while (this.waiting > 0 && this.#queue[this.#head]!.at <= limit) {
      const w = this.#queue[this.#head++]!;
      this.turnedAway++;
      w.reject(new OverloadedError(`not started within ${this.#maxWait} ms: too many in flight`));
    }
    this.#compact();
  }

  #next(): void {
    this.#expire();
    while (this.#running < this.#limit && this.waiting > 0) this.#queue[this.#head++]!.start();
    this.#compact();
  }

  #compact(): void {
    if (this.waiting === 0) {
      this.#queue = [];
      this.#head = 0;
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    } else if (this.#head > 1024) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }
}
