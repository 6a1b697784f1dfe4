/**
 * Pacing for the plugin host, so that no plugin can take the agent's time: bounded waits, time
 * slices for the readers of a plugin's pipes, and log budgets for what a plugin writes.
 *
 * @module
 */

/** Longest run of a reader before it lets the event loop serve others (status, signals). */
export const READ_SLICE_MS = 5;

/**
 * Waits for `p`, at most `ms`; true when `p` settled (either way) in time.
 *
 * @example
 * ```ts
 * import { within } from "./_pacing.ts";
 * await within(new Promise(() => {}), 10); // false
 * ```
 */
export function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.then(() => true, () => true),
    new Promise<boolean>((r) => timer = setTimeout(() => r(false), ms)),
  ]).finally(() => clearTimeout(timer));
}

/**
 * A function to call per line read: every {@linkcode READ_SLICE_MS} it returns a promise of the
 * next macrotask. A pipe that always has data would otherwise keep its reader in microtasks and
 * starve the control socket, timers and signal handlers.
 *
 * @example
 * ```ts
 * import { timeSlices } from "./_pacing.ts";
 * const pause = timeSlices();
 * for (const line of ["a", "b"]) await pause(); // usually no wait at all
 * ```
 */
export function timeSlices(): () => Promise<void> | undefined {
  let since = performance.now();
  return () => {
    if (performance.now() - since < READ_SLICE_MS) return undefined;
    return new Promise<void>((r) => setTimeout(r, 0)).then(() => void (since = performance.now()));
  };
}

/**
 * At most `perSecond` log records a second; the others are counted and reported by `report`
 * (on the first record of a later second, or on {@linkcode LogBudget.flush}).
 *
 * @example
 * ```ts
 * import { LogBudget } from "./_pacing.ts";
 * const budget = new LogBudget(1, (dropped) => console.log(`${dropped} not logged`));
 * [budget.take(), budget.take()]; // [true, false]
 * budget.flush(); // "1 not logged"
 * ```
 */
export class LogBudget {
  #second = 0;
  #used = 0;
  #dropped = 0;
  readonly #now: () => number;

  /** `now` (ms) is the clock; tests pass their own. */
  constructor(
    readonly perSecond: number,
    readonly report: (dropped: number) => void,
    now: () => number = Date.now,
  ) {
    this.#now = now;
  }

  /** Records asked for in the current second so far. */
  get used(): number {
    return this.#used;
  }

  /** Whether a record may be logged now. */
  take(): boolean {
    const now = Math.floor(this.#now() / 1000);
    if (now !== this.#second) {
      this.flush();
      [this.#second, this.#used] = [now, 0];
    }
    if (++this.#used <= this.perSecond) return true;
    this.#dropped++;
    return false;
  }

  /** Reports what was not logged. */
  flush(): void {
    if (this.#dropped > 0) this.report(this.#dropped);
    this.#dropped = 0;
  }
}
