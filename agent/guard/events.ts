/**
 * Events as users see them (log line, metric, `camblet-agent events` stream): runtime guard
 * decisions (the kernel's record plus the workload's policy, labels and SPIFFE ID) and syscall
 * audit violations (agent/audit), each line with its `kind`. The hub fans events out to NDJSON
 * subscribers, each with its own filter; a slow subscriber loses its oldest lines (counted in
 * `dropped`), never blocking the ring-buffer reader.
 *
 * @module
 */
import type { AuditRecord } from "../audit/engine.ts";

/** One event, enriched. */
export interface GuardEventRecord {
  /** Set on the stream (the hub adds it). */
  kind?: "guard";
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

/** A record on the stream: a guard decision or an audit violation. */
export type StreamRecord = GuardEventRecord | AuditRecord;

/** The kinds of records on the stream. */
export const EVENT_KINDS = ["guard", "audit"] as const;

/**
 * What an events subscriber asks for; absent fields match anything. `policy` and `outcome` are
 * the guard's: setting one leaves audit records out; `severity` leaves guard records out.
 */
export interface EventFilter {
  /** `guard` or `audit`. */
  kind?: (typeof EVENT_KINDS)[number];
  pid?: number;
  /** Substring of the policy file (or source) name. */
  policy?: string;
  /** A `name=value` label the workload must carry. */
  label?: string;
  outcome?: string;
  /** Substring of the rule (guard: `exec.deny`; audit: the rule's name). */
  rule?: string;
  /** An audit rule's severity, e.g. `critical`. */
  severity?: string;
}

function isAudit(e: StreamRecord): e is AuditRecord {
  return e.kind === "audit";
}

/** Whether `e` passes `f`. */
export function eventMatches(f: EventFilter, e: StreamRecord): boolean {
  if (f.rule !== undefined && !e.rule.includes(f.rule)) return false;
  if (isAudit(e)) {
    return (f.kind === undefined || f.kind === "audit") &&
      f.policy === undefined && f.outcome === undefined &&
      (f.pid === undefined || e.process.pid === f.pid) &&
      (f.label === undefined || e.labels.includes(f.label)) &&
      (f.severity === undefined || e.severity === f.severity);
  }
  return (f.kind === undefined || f.kind === "guard") && f.severity === undefined &&
    (f.pid === undefined || e.pid === f.pid) &&
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
  publish(e: StreamRecord): void {
    const line = JSON.stringify(e.kind ? e : { kind: "guard", ...e }) + "\n";
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

/**
 * `/v1/events` query parameters → a filter (`kind`, `pid`, `policy`, `label`, `outcome`, `rule`,
 * `severity`); RangeError (HTTP 400) naming the parameter and value when one is bad.
 */
export function eventFilterFromQuery(u: URL): EventFilter {
  const f: EventFilter = {};
  const pid = u.searchParams.get("pid");
  if (pid !== null && pid !== "") {
    const n = Number(pid);
    if (!Number.isInteger(n) || n <= 0) {
      throw new RangeError(`pid must be a positive integer, got "${pid}"`);
    }
    f.pid = n;
  }
  const kind = u.searchParams.get("kind");
  if (kind) {
    if (!(EVENT_KINDS as readonly string[]).includes(kind)) {
      throw new RangeError(`kind must be ${EVENT_KINDS.join(" or ")}, got "${kind}"`);
    }
    f.kind = kind as NonNullable<EventFilter["kind"]>;
  }
  for (const k of ["policy", "label", "outcome", "rule", "severity"] as const) {
    const v = u.searchParams.get(k);
    if (v) f[k] = v;
  }
  return f;
}

/**
 * One stream of several NDJSON streams whose chunks are whole lines (the hubs enqueue one line
 * per chunk), until every one ends; cancelling it cancels them all.
 */
export function mergeStreams(streams: ReadableStream<Uint8Array>[]): ReadableStream<Uint8Array> {
  if (streams.length === 1) return streams[0]!;
  const readers = streams.map((s) => s.getReader());
  // Read on only while the consumer keeps up: the hubs then drop a slow reader's oldest lines.
  let waiting: (() => void)[] = [];
  return new ReadableStream<Uint8Array>({
    start(ctrl) {
      let open = readers.length;
      for (const r of readers) {
        void (async () => {
          try {
            for (;;) {
              while ((ctrl.desiredSize ?? 1) <= 0) await new Promise<void>((w) => waiting.push(w));
              const { value, done } = await r.read();
              if (done) break;
              ctrl.enqueue(value);
            }
          } catch {
            // cancelled
          }
          if (--open === 0) {
            try {
              ctrl.close();
            } catch {
              // already cancelled
            }
          }
        })();
      }
    },
    pull() {
      const w = waiting;
      waiting = [];
      for (const f of w) f();
    },
    cancel(reason) {
      return Promise.all(readers.map((r) => r.cancel(reason).catch(() => {}))).then(() => {});
    },
  }, { highWaterMark: 16 });
}
