/**
 * Many deadlines behind one timer. A burst of 100 requests needs 200 deadlines (budget and
 * watchdog each); a `setTimeout` and `clearTimeout` apiece, with their objects, were a measurable
 * part of the answering thread's work per request. Deadlines arrive nearly in order (each is the
 * read time plus a constant), so they are kept sorted in an array and only the earliest one has a
 * timer.
 *
 * @module
 */

/** A scheduled deadline; pass it to {@linkcode DeadlineQueue.cancel}. */
export interface Deadline {
  readonly at: number;
  fn: (() => void) | undefined;
}

/** Runs callbacks at absolute times of `now()`, one timer for all of them. */
export class DeadlineQueue {
  readonly #now: () => number;
  #items: Deadline[] = [];
  #head = 0;
  #live = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;

  constructor(now: () => number) {
    this.#now = now;
  }

  /** Deadlines scheduled and neither run nor cancelled. */
  get size(): number {
    return this.#live;
  }

  /**
   * Runs `fn` once `now()` reaches `at`.
   *
   * @example
   * ```ts
   * import { DeadlineQueue } from "./deadline_queue.ts";
   * const q = new DeadlineQueue(() => performance.now());
   * const d = q.add(performance.now() + 10, () => console.log("late"));
   * q.cancel(d);
   * ```
   */
  add(at: number, fn: () => void): Deadline {
    const d: Deadline = { at, fn };
    const items = this.#items;
    let i = items.length;
    // Nearly always appended; an earlier one is placed by binary search.
    if (i > this.#head && items[i - 1]!.at > at) {
      let lo = this.#head, hi = i;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (items[mid]!.at <= at) lo = mid + 1;
        else hi = mid;
      }
      i = lo;
      items.splice(i, 0, d);
    } else items.push(d);
    this.#live++;
    if (at < this.#timerAt) this.#arm(at);
    return d;
  }

  /** Cancels `d` (nothing if it ran or was cancelled). */
  cancel(d: Deadline): void {
    if (d.fn === undefined) return;
    d.fn = undefined;
    if (--this.#live === 0) this.#reset();
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, at - this.#now()));
  }

  #reset(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#items = [];
    this.#head = 0;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#now();
    const items = this.#items;
    while (this.#head < items.length) {
      const d = items[this.#head]!;
      if (d.fn === undefined) {
        this.#head++;
        continue;
      }
      if (d.at > now) break;
      this.#head++;
      const fn = d.fn;
      d.fn = undefined;
      this.#live--;
      fn();
      // It emptied the queue (the last cancel resets it): nothing of `items` is left to run, and
      // #head now belongs to the new array, which add() armed.
      if (this.#items !== items) return;
    }
    if (this.#live === 0) return this.#reset();
    while (this.#head < items.length && items[this.#head]!.fn === undefined) this.#head++;
    if (this.#head > 1024) {
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
    // A callback may have armed the timer for a later deadline than the earliest left.
    const next = this.#items[this.#head];
    if (next && next.at < this.#timerAt) this.#arm(next.at);
  }
}
