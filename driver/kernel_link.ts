/**
 * The main thread's handle on the kernel worker: starts it on a device, serves its handler calls
 * (attestation, signing) and trace lines, pushes configuration messages, and shuts it down.
 *
 * @module
 */
import type { CsrSignData, LogMessage } from "./codec.ts";
import type { Level } from "./dispatcher.ts";
import { DeviceError, ERRNO } from "./ffi.ts";
import type {
  CallRequest,
  CallResult,
  FromWorker,
  StartOptions,
  ToWorker,
} from "./link_protocol.ts";
import type { TaskContext } from "./payloads.ts";
import type { StatsSnapshot } from "./stats.ts";
import { PayloadTooLargeError, type WriterStats } from "./transport.ts";

/** Handlers that run on the main thread (they may do I/O). */
export interface LinkHandlers {
  augment(task: TaskContext, signal: AbortSignal): Promise<string[]>;
  csrSign(task: TaskContext, data: CsrSignData, id?: string): Promise<string>;
  log(message: LogMessage): void;
}

/** Options of {@linkcode KernelLink.open}. */
export interface KernelLinkOptions extends StartOptions {
  handlers: LinkHandlers;
  /** Log records from the worker (its thread has no log sinks). */
  onEvent?: (level: Level, message: string, props: Record<string, unknown>) => void;
}

/** Counters of the kernel worker. */
export interface LinkStats {
  dispatch: StatsSnapshot;
  writer: WriterStats;
}

/** How the device read loop ended. */
export interface LinkEnd {
  reason: string;
  message?: string;
}

const CODE_ERRNO: Record<string, number> = Object.fromEntries(
  Object.entries(ERRNO).map(([k, v]) => [k, v]),
);

/** A running kernel worker. */
export class KernelLink {
  readonly #worker: Worker;
  readonly #options: KernelLinkOptions;
  readonly #aborts = new Map<number, AbortController>();
  readonly #pushes = new Map<number, { resolve(): void; reject(e: Error): void }>();
  readonly #stats = new Map<number, (s: LinkStats) => void>();
  #next = 1;
  #closed: (() => void) | undefined;
  #endResolve!: (e: LinkEnd) => void;
  /** Resolves when the device read loop ends (end of file or a read error). */
  readonly ended: Promise<LinkEnd>;

  private constructor(worker: Worker, options: KernelLinkOptions) {
    this.#worker = worker;
    this.#options = options;
    this.ended = new Promise((r) => this.#endResolve = r);
  }

  /**
   * Starts `worker` (a kernel worker entry, see driver/worker.ts) on `options.device`. Resolves once
   * the device is open; rejects with {@linkcode DeviceError} (EBUSY, ENOENT explained) otherwise.
   */
  static open(worker: Worker, options: KernelLinkOptions): Promise<KernelLink> {
    const link = new KernelLink(worker, options);
    return new Promise<KernelLink>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const m = e.data;
        if (m.t === "opened") return resolve(link);
        if (m.t === "open_failed") {
          link.#terminate();
          return reject(new DeviceError(m.message, CODE_ERRNO[m.code] ?? 0));
        }
        link.#onMessage(m);
      };
      worker.onerror = (e) => {
        e.preventDefault();
        const err = new Error(`Kernel worker failed: ${e.message}`);
        reject(err);
        link.#endResolve({ reason: "error", message: err.message });
      };
      const { handlers: _h, onEvent: _e, ...start } = options;
      link.#send({ t: "start", options: start });
    });
  }

  /** Ends the worker (it reads the device itself: no other thread to end). */
  #terminate(): void {
    this.#worker.terminate();
  }

  #send(m: ToWorker): void {
    this.#worker.postMessage(m);
  }

  #onMessage(m: FromWorker): void {
    switch (m.t) {
      case "call":
        return this.#call(m);
      case "calls":
        for (const c of m.calls) this.#call(c);
        return;
      case "abort":
        this.#aborts.get(m.rid)?.abort(new Error("augment budget exhausted"));
        return;
      case "log":
        try {
          this.#options.handlers.log(m.message);
        } catch { /* a subscriber's failure is not the kernel's */ }
        return;
      case "event":
        this.#options.onEvent?.(m.level, m.message, m.props);
        return;
      case "pushed": {
        const p = this.#pushes.get(m.pid);
        this.#pushes.delete(m.pid);
        if (!p) return;
        if (m.ok) return p.resolve();
        return p.reject(
          m.tooLarge
            ? new PayloadTooLargeError("", m.tooLarge.bytes, m.tooLarge.limit)
            : new Error(m.error),
        );
      }
      case "stats":
        this.#stats.get(m.sid)?.({ dispatch: m.dispatch, writer: m.writer });
        this.#stats.delete(m.sid);
        return;
      case "ended":
        this.#endResolve(
          m.message === undefined ? { reason: m.reason } : { reason: m.reason, message: m.message },
        );
        return;
      case "closed":
        this.#closed?.();
        return;
    }
  }

  /** Results settled in this turn, sent together at its end (one hop for a burst's answers). */
  #results: CallResult[] = [];

  #result(r: CallResult): void {
    if (this.#results.push(r) > 1) return;
    queueMicrotask(() => {
      const all = this.#results;
      this.#results = [];
      this.#send(all.length === 1 ? all[0]! : { t: "results", results: all });
    });
  }

  #call(m: CallRequest): void {
    const reply = (p: Promise<unknown>) =>
      p.then(
        (value) => this.#result({ t: "result", rid: m.rid, ok: true, value }),
        (e: unknown) =>
          this.#result({
            t: "result",
            rid: m.rid,
            ok: false,
            error: e instanceof Error ? e.message : String(e),
          }),
      );
    const h = this.#options.handlers;
    try {
      if (m.method === "augment") {
        const ac = new AbortController();
        this.#aborts.set(m.rid, ac);
        reply(h.augment(m.task, ac.signal)).finally(() => this.#aborts.delete(m.rid));
      } else {
        reply(h.csrSign(m.task, m.data, m.id));
      }
    } catch (e) {
      reply(Promise.reject(e));
    }
  }

  /**
   * Writes one configuration line (from the codec) in one `write()`. Resolves when written; waits
   * for a kernel read if the write budget is used up; rejects with {@linkcode PayloadTooLargeError}
   * when it can never fit. `key` coalesces waiting pushes (e.g. `load_policies`).
   */
  push(line: string, what: string, key?: string): Promise<void> {
    const pid = this.#next++;
    return new Promise<void>((resolve, reject) => {
      this.#pushes.set(pid, {
        resolve,
        reject: (e) =>
          reject(
            e instanceof PayloadTooLargeError
              ? new PayloadTooLargeError(what, e.bytes, e.limit)
              : e,
          ),
      });
      this.#send(
        key === undefined ? { t: "push", pid, line, what } : { t: "push", pid, line, what, key },
      );
    });
  }

  /** Counters of the worker. */
  stats(): Promise<LinkStats> {
    const sid = this.#next++;
    return new Promise((resolve) => {
      this.#stats.set(sid, resolve);
      this.#send({ t: "stats", sid });
    });
  }

  /** Answers what is in flight, closes the device and stops the worker. */
  async close(timeoutMs = 5000): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#closed = resolve;
      timer = setTimeout(resolve, timeoutMs);
      this.#send({ t: "close" });
    });
    clearTimeout(timer);
    this.#terminate();
    for (const p of this.#pushes.values()) {
      p.reject(new Error("Cannot push: the kernel link closed"));
    }
    this.#pushes.clear();
    this.#endResolve({ reason: "closed" });
  }
}
