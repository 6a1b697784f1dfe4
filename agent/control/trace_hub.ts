/**
 * Trace subscriptions: each client of `/v1/trace` (and `camblet-agent trace`) gets the kernel
 * `log` lines of the processes it asked for. The kernel only emits them for processes that match
 * one of its trace filters, so the hub adds a kernel filter for the first subscriber of a filter
 * and removes it when the last one leaves (kernel semantics: driver:src/trace.c).
 *
 * @module
 */
import type { LogMessage, TraceRequest } from "../../driver/codec.ts";

/** What a subscriber asks for; absent fields match anything. */
export interface TraceFilter {
  pid?: number;
  uid?: number;
  command_name?: string;
}

/** One trace line as streamed to clients (NDJSON). */
export interface TraceLine {
  time: string;
  task: LogMessage["task"];
  message: string;
  level?: string;
  fields: Record<string, string>;
}

/**
 * The kernel filter for a subscriber's filter. The kernel ignores `uid` 0 and empty fields (they
 * mean "any"), so a uid-0 request is narrowed here, on the agent side.
 */
export function kernelFilter(f: TraceFilter): Omit<TraceRequest, "action"> {
  const k: Omit<TraceRequest, "action"> = {};
  if (f.pid !== undefined && f.pid > 0) k.pid = f.pid;
  if (f.uid !== undefined && f.uid > 0) k.uid = f.uid;
  if (f.command_name !== undefined && f.command_name !== "") k.command_name = f.command_name;
  return k;
}

/** Whether a trace line's task matches `f`. */
export function matches(f: TraceFilter, task: LogMessage["task"]): boolean {
  return (f.pid === undefined || task.pid === f.pid) &&
    (f.uid === undefined || task.uid === f.uid) &&
    (f.command_name === undefined || task.command_name === f.command_name);
}

/** Converts a kernel log message to a streamed line. */
export function traceLine(m: LogMessage, now: Date = new Date()): TraceLine {
  const { message, level, ...rest } = m.data;
  const fields: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) fields[k] = v;
  const line: TraceLine = { time: now.toISOString(), task: m.task, message, fields };
  if (level !== undefined) line.level = level;
  return line;
}

interface Subscriber {
  filter: TraceFilter;
  key: string;
  send(line: TraceLine): void;
  end(): void;
}

/** Routes kernel trace lines to subscribers and keeps the kernel's filters in step. */
export class TraceHub {
  readonly #push: (request: TraceRequest) => Promise<void>;
  readonly #subs = new Set<Subscriber>();
  readonly #refs = new Map<string, number>();

  /** `push` sends a `manage_trace_requests` to the kernel. */
  constructor(push: (request: TraceRequest) => Promise<void>) {
    this.#push = push;
  }

  /** Number of connected subscribers. */
  get subscribers(): number {
    return this.#subs.size;
  }

  /** Delivers one kernel `log` message to every matching subscriber. */
  deliver(m: LogMessage): void {
    if (this.#subs.size === 0) return;
    let line: TraceLine | undefined;
    for (const s of this.#subs) {
      if (!matches(s.filter, m.task)) continue;
      line ??= traceLine(m);
      s.send(line);
    }
  }

  /**
   * Subscribes; the stream yields NDJSON lines until the client cancels it, which removes the
   * kernel filter when no one else needs it. Rejects if the kernel filter cannot be added.
   */
  async subscribe(filter: TraceFilter): Promise<ReadableStream<Uint8Array>> {
    const k = kernelFilter(filter);
    if (Object.keys(k).length === 0) {
      throw new RangeError("Cannot trace: give a pid, a uid above 0 or a command name");
    }
    const key = JSON.stringify(k);
    const n = this.#refs.get(key) ?? 0;
    this.#refs.set(key, n + 1);
    if (n === 0) {
      try {
        await this.#push({ action: "add", ...k });
      } catch (e) {
        this.#release(key, false);
        throw e;
      }
    }
    const enc = new TextEncoder();
    let sub: Subscriber | undefined;
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        sub = {
          filter,
          key,
          send: (line) => {
            try {
              controller.enqueue(enc.encode(JSON.stringify(line) + "\n"));
            } catch { /* closed */ }
          },
          end: () => {
            try {
              controller.close();
            } catch { /* closed */ }
          },
        };
        this.#subs.add(sub);
      },
      cancel: () => {
        if (!sub) return;
        this.#subs.delete(sub);
        this.#release(key, true);
      },
    });
  }

  /** Ends every stream (at shutdown), without touching the kernel's filters. */
  closeAll(): void {
    for (const s of this.#subs) s.end();
    this.#subs.clear();
    this.#refs.clear();
  }

  #release(key: string, remove: boolean): void {
    const n = (this.#refs.get(key) ?? 1) - 1;
    if (n > 0) {
      this.#refs.set(key, n);
      return;
    }
    this.#refs.delete(key);
    if (remove) {
      this.#push({ action: "remove", ...JSON.parse(key) }).catch(() => {});
    }
  }
}
