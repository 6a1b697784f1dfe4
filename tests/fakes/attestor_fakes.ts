/**
 * Configurable attestors for runner tests and benchmarks: fixed labels after a delay, failing,
 * hanging until aborted, or misbehaving. They count their calls.
 *
 * @module
 */
import type { Attestor, Labels, TaskContext } from "../../plugins/types.ts";

/** Options of {@linkcode fakeAttestor}. */
export interface FakeAttestorOptions {
  name: string;
  /** Labels to return (default `{ "<name>:pid": [pid] }`). */
  labels?: (task: TaskContext) => Labels;
  /** Delay before answering, honouring the signal (ms). */
  delayMs?: number;
  /** Never answer; reject only when the signal aborts. */
  hang?: boolean;
  /** Throw this (asynchronously) instead of answering. */
  fail?: string;
  /** Throw synchronously from `collect` (a buggy plugin). */
  throwSync?: string;
  /** Return a non-object (a buggy plugin). */
  garbage?: boolean;
}

/** A fake attestor with a call counter and a `disposed` flag. */
export interface FakeAttestor extends Attestor {
  calls: number;
  disposed: boolean;
  aborted: number;
}

/** Creates a {@linkcode FakeAttestor}. */
export function fakeAttestor(o: FakeAttestorOptions): FakeAttestor {
  const self: FakeAttestor = {
    name: o.name,
    calls: 0,
    disposed: false,
    aborted: 0,
    collect(task: TaskContext, signal: AbortSignal): Promise<Labels> {
      self.calls++;
      if (o.throwSync) throw new Error(o.throwSync);
      if (o.garbage) return Promise.resolve("nonsense" as unknown as Labels);
      return new Promise<Labels>((resolve, reject) => {
        const answer = () => {
          signal.removeEventListener("abort", onAbort);
          if (o.fail) reject(new Error(o.fail));
          else resolve(o.labels?.(task) ?? { [`${o.name}:pid`]: [String(task.pid)] });
        };
        const timer = o.hang ? undefined : setTimeout(answer, o.delayMs ?? 0);
        const onAbort = () => {
          if (timer !== undefined) clearTimeout(timer);
          self.aborted++;
          reject(signal.reason);
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener("abort", onAbort, { once: true });
      });
    },
    dispose() {
      self.disposed = true;
    },
  };
  return self;
}
