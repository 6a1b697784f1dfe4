/**
 * The schedule of polling sources: a check every `intervalMs` (± `jitter`, so that a fleet does
 * not poll in step), and after a failure again sooner with exponential backoff, from `retryMinMs`
 * up to the interval, so a blip heals fast and a dead server is asked no more often than usual.
 * Checks never overlap: {@linkcode Serial} runs them one at a time.
 *
 * @module
 */
import type { SourceCheck } from "./types.ts";

/** Runs async tasks one at a time, in call order. */
export class Serial {
  #tail: Promise<unknown> = Promise.resolve();
  /** Runs `task` after every task queued before it. */
  run<T>(task: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(task);
    this.#tail = next.catch(() => {});
    return next;
  }
  /** Resolves when everything queued so far has finished. */
  idle(): Promise<void> {
    return this.#tail.then(() => {});
  }
}

/** Timing of a {@linkcode Poller}. */
export interface PollTiming {
  intervalMs: number;
  /** Fraction of the interval added or removed at random (0..1). */
  jitter: number;
  /** First retry delay after a failure; doubles per failure up to `intervalMs`. */
  retryMinMs: number;
}

/**
 * The delay before the next check.
 *
 * @example
 * ```ts
 * import { nextDelay } from "./_poller.ts";
 * nextDelay({ intervalMs: 60_000, jitter: 0, retryMinMs: 1000 }, 3); // 4000
 * ```
 */
export function nextDelay(t: PollTiming, failures: number, random = Math.random()): number {
  const base = failures === 0
    ? t.intervalMs
    : Math.min(t.intervalMs, t.retryMinMs * 2 ** Math.min(failures - 1, 30));
  return Math.max(1, Math.round(base * (1 + t.jitter * (2 * random - 1))));
}

/** Calls `check` on the {@linkcode PollTiming} schedule until stopped. */
export class Poller {
  readonly #check: () => Promise<SourceCheck>;
  readonly #onCheck: (r: SourceCheck) => void;
  readonly #timing: PollTiming;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #failures = 0;
  #stopped = false;
  #running: Promise<void> = Promise.resolve();

  constructor(
    check: () => Promise<SourceCheck>,
    onCheck: (r: SourceCheck) => void,
    timing: PollTiming,
  ) {
    this.#check = check;
    this.#onCheck = onCheck;
    this.#timing = timing;
  }

  /** Schedules the first check one delay from now (after a failure: the backoff delay). */
  start(failedBefore = false): void {
    this.#failures = failedBefore ? 1 : 0;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.#tick();
    }, nextDelay(this.#timing, this.#failures));
  }

  async #tick(): Promise<void> {
    const result = await this.#check();
    if (this.#stopped) return;
    this.#failures = result.kind === "failure" ? this.#failures + 1 : 0;
    try {
      this.#onCheck(result);
    } finally {
      this.#schedule();
    }
  }

  /** Stops the schedule and waits for a check in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}
