/**
 * Runtime guard events as users see them (log line, metric, `camblet-agent events` stream): the
 * kernel's record plus the workload's policy, labels and SPIFFE ID. The hub fans events out to
 * NDJSON subscribers, each with its own filter; a slow subscriber loses its oldest lines (counted
 * in `dropped`), never blocking the ring-buffer reader.
 *
 * @module
 */

/** One event, enriched. */
export interface GuardEventRecord {
  time: string;
  outcome: "denied" | "audited" | "bound";
  /** LSM hook, e.g. `exec`, `open`, `ptrace`. */
  hook: string;
  /** The policy rule that decided, e.g. `exec.deny`, `syslog`. */
  rule: string;
  mode: "enforce" | "audit";
  pid: number;
  tid: number;
  uid: number;
  /** The program (comm) and its argument: the path, the mount type, the target pid, …. */
  program: string;
  path?: string;
  arg: number;
  cgroupId: string;
  policy?: { file: string; item: number; line?: number; source?: string };
  labels: string[];
  spiffeId?: string;
}

/** What an events subscriber asks for; absent fields match anything. */
export interface EventFilter {
  pid?: number;
  /** Substring of the policy file (or source) name. */
  policy?: string;
  /** A `name=value` label the workload must carry. */
  label?: string;
  outcome?: string;
}

/** Whether `e` passes `f`. */
export function eventMatches(f: EventFilter, e: GuardEventRecord): boolean {
  return (f.pid === undefined || e.pid === f.pid) &&
    (f.outcome === undefined || e.outcome === f.outcome) &&
    (f.label === undefined || e.labels.includes(f.label)) &&
    (f.policy === undefined ||
      (e.policy !== undefined &&
        (e.policy.file.includes(f.policy) || (e.policy.source ?? "").includes(f.policy))));
}

interface Subscriber {
  filter: EventFilter;
  queue: string[];
  ctrl: ReadableStreamDefaultController<Uint8Array>;
}

/** Most lines buffered per subscriber before the oldest are dropped. */
export const SUBSCRIBER_QUEUE = 1024;

/** Fans events out to NDJSON streams. */
export class EventHub {
  #subs = new Set<Subscriber>();
  #enc = new TextEncoder();
  /** Lines dropped because a subscriber did not keep up. */
  dropped = 0;

  /** Number of connected subscribers. */
  get subscribers(): number {
    return this.#subs.size;
  }

  /** A stream of NDJSON lines of the events passing `filter`, until cancelled or closed. */
  subscribe(filter: EventFilter): ReadableStream<Uint8Array> {
    let sub: Subscriber;
    return new ReadableStream<Uint8Array>({
      start: (ctrl) => {
        sub = { filter, queue: [], ctrl };
        this.#subs.add(sub);
      },
      pull: () => this.#flush(sub),
      cancel: () => {
        this.#subs.delete(sub);
      },
    }, { highWaterMark: 16 });
  }

  #flush(s: Subscriber): void {
    while (s.queue.length && (s.ctrl.desiredSize ?? 0) > 0) {
      s.ctrl.enqueue(this.#enc.encode(s.queue.shift()!));
    }
  }

  /** Delivers one event to every matching subscriber. */
  publish(e: GuardEventRecord): void {
    const line = JSON.stringify(e) + "\n";
    for (const s of this.#subs) {
      if (!eventMatches(s.filter, e)) continue;
      s.queue.push(line);
      if (s.queue.length > SUBSCRIBER_QUEUE) {
        s.queue.shift();
        this.dropped++;
      }
      this.#flush(s);
    }
  }

  /** Ends every stream. */
  closeAll(): void {
    for (const s of this.#subs) {
      try {
        s.ctrl.close();
      } catch {
        // already cancelled
      }
    }
    this.#subs.clear();
  }
}
