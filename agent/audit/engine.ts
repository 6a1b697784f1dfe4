/**
 * The syscall audit pipeline: captured event → process context → Rego rules (wasm) → violation
 * records (JSON lines) to the sinks, with metrics per rule. {@linkcode AuditEngine} is the judge
 * alone (used offline by `camblet-agent audit test`); {@linkcode AuditCapture} adds the kernel
 * side and swaps rules without a restart (a bad rule set keeps the last good one).
 *
 * @module
 */
import type { RawAuditEvent } from "../../driver/bpf/audit_layout.ts";
import type { AuditPrograms, AuditStats } from "../../driver/bpf/audit.ts";
import { type Counter, MetricsRegistry } from "../../plugins/sdk/metrics.ts";
import { type AuditInput, ContextBuilder, type ContextSources, type PodInput } from "./context.ts";
import type { AuditRules, RuleViolation } from "./rules.ts";

/** One violation as sinks and the events stream see it. */
export interface AuditRecord extends RuleViolation {
  kind: "audit";
  time: string;
  /** The syscall and its arguments. */
  event: {
    syscall: string;
    ret: number;
    path: string;
    path2: string;
    flags?: number;
    mode: number;
    argv: string[];
    exe_name: string;
    addr: AuditInput["addr"];
    ptrace: AuditInput["ptrace"];
    mount: AuditInput["mount"];
  };
  /** The process, then its ancestors, parent first. */
  process: AuditInput["proc"] & { ancestors: AuditInput["ancestors"] };
  container: AuditInput["container"];
  /** The Kubernetes pod (name, namespace, uid, container, pod labels), or null. */
  pod?: PodInput | null;
  labels: string[];
  spiffe_id: string;
}

/** Receives violation records; must not block (queue and return). */
export type AuditSink = (r: AuditRecord) => void;

/** The record of `v` raised by `input`. */
export function auditRecord(v: RuleViolation, input: AuditInput): AuditRecord {
  const event: AuditRecord["event"] = {
    syscall: input.syscall,
    ret: input.ret,
    path: input.path,
    path2: input.path2,
    mode: input.mode,
    argv: input.argv,
    exe_name: input.exe_name,
    addr: input.addr,
    ptrace: input.ptrace,
    mount: input.mount,
  };
  if (input.flags !== undefined) event.flags = input.flags;
  return {
    kind: "audit",
    rule: v.rule,
    severity: v.severity,
    output: v.output,
    time: input.time,
    event,
    process: { ...input.proc, ancestors: input.ancestors },
    container: input.container,
    pod: input.pod ?? null, // recordings from before it have none
    labels: input.labels,
    spiffe_id: input.spiffe_id,
  };
}

/** Judges inputs against the current rules and fans the records out. */
export class AuditEngine {
  #rules: AuditRules;
  #sinks: AuditSink[];
  readonly metrics: MetricsRegistry;
  /** Inputs judged, and evaluation failures (a rule bug must not stop the stream). */
  judged = 0;
  failed = 0;

  constructor(rules: AuditRules, sinks: AuditSink[] = [], metrics = new MetricsRegistry()) {
    this.#rules = rules;
    this.#sinks = sinks;
    this.metrics = metrics;
  }

  get rules(): AuditRules {
    return this.#rules;
  }

  set rules(r: AuditRules) {
    this.#rules = r;
  }

  #violations: Counter | undefined;
  /** Label sets of the violations counter by rule and severity (one object each, not per call). */
  #labelSets = new Map<string, { rule: string; severity: string }>();

  #count(rule: string, severity: string): void {
    const c = this.#violations ??= this.metrics.counter(
      "camblet_audit_violations_total",
      "Audit rule violations, by rule",
    );
    const k = `${severity}\0${rule}`;
    let l = this.#labelSets.get(k);
    if (!l) {
      l = { rule, severity };
      if (this.#labelSets.size < 4096) this.#labelSets.set(k, l);
    }
    c.inc(l);
  }

  /** Judges one input; returns its records (also sent to the sinks). */
  judge(input: AuditInput): AuditRecord[] {
    this.judged++;
    let vs: RuleViolation[];
    try {
      vs = this.#rules.judge(input);
    } catch {
      this.failed++;
      this.metrics.counter(
        "camblet_audit_evaluation_errors_total",
        "Audit inputs the rules failed to evaluate",
      ).inc({ source: this.#rules.source });
      return [];
    }
    if (vs.length === 0) return [];
    const out = vs.map((v) => auditRecord(v, input));
    for (const r of out) {
      this.#count(r.rule, r.severity);
      for (const s of this.#sinks) {
        try {
          s(r);
        } catch {
          // a failing sink must not stop the others
        }
      }
    }
    return out;
  }
}

/** A sink writing JSON lines to `write` (stdout, a file). */
export function jsonLinesSink(write: (line: string) => void): AuditSink {
  return (r) => write(JSON.stringify(r) + "\n");
}

/** Options of {@linkcode AuditCapture.start}. */
export interface AuditCaptureOptions extends ContextSources {
  programs: AuditPrograms;
  engine: AuditEngine;
  /** Ring buffer drain interval, ms (default 20). */
  pollMs?: number;
  /** Longest the judge runs before yielding to the event loop, ms (default SLICE_MS). */
  sliceMs?: number;
  /**
   * Events read from the kernel and waiting for the judge (default QUEUE_MAX): while this many
   * wait, the ring buffer is not read, so a backlog stays in the kernel's fixed 4 MiB (its
   * overflow counted as lost) instead of growing the agent's heap.
   */
  queueMax?: number;
  /** Every input judged, also those without violations (`--record`). */
  onInput?: (input: AuditInput) => void;
}

/**
 * Longest the judge runs before yielding to the event loop, ms. A yield (setTimeout 0, the
 * only one that lets I/O in) costs ~2 ms on a busy host; 10 ms slices judged a backlog faster
 * but doubled the p99 timer lag at 20k events/s beside a busy loop (49 ms, 22 ms with 5).
 */
export const SLICE_MS = 5;

/**
 * Default {@linkcode AuditCaptureOptions.queueMax}. Past it the backlog waits in the ring buffer
 * (~3,000 events). A queued event holds 1-3 KB of heap: at 40k events/s beside a busy loop the
 * old bound (65536) kept a 3 s burst whole at 244 MB peak RSS; 8192 lost 16 % of it at 196 MB
 * (4096, with 10 ms slices: 48 % at 149 MB). Below 20k events/s none of them lost any.
 */
export const QUEUE_MAX = 8192;

/**
 * Most events one read of the ring buffer takes: decoding 1024 at once (~8 ms) added to the
 * judge's slice in the kernel link's wait.
 */
export const READ_MAX = 256;

/** Kernel capture feeding an {@linkcode AuditEngine}. */
export class AuditCapture {
  #o: AuditCaptureOptions;
  #ctx: ContextBuilder;
  #rb: { consume(): number; close(): void };
  #timer: ReturnType<typeof setInterval> | undefined;
  #queue: RawAuditEvent[] = [];
  /** Events read and not judged yet (the queue and the rest of the batch being judged). */
  #pending = 0;
  /** Events delivered by the current consume(). */
  #read = 0;
  #queueMax: number;
  /**
   * Events read from the kernel but dropped in the agent: none since the queue's bound stops
   * reading instead (the kernel counts what the ring then has no room for as lost).
   */
  dropped = 0;
  #running: Promise<void> | undefined;

  private constructor(o: AuditCaptureOptions) {
    this.#o = o;
    this.#ctx = new ContextBuilder(o);
    this.#queueMax = o.queueMax ?? QUEUE_MAX;
    this.#rb = o.programs.openEvents((e) => {
      this.#queue.push(e);
      // A full queue or READ_MAX events end this read; the rest waits in the kernel (consume()
      // would otherwise go on as long as a fast writer keeps up, blocking the event loop).
      return ++this.#pending < this.#queueMax && ++this.#read < READ_MAX;
    });
  }

  /** Sets the prefilter from the engine's rules and starts draining the ring buffer. */
  static start(o: AuditCaptureOptions): AuditCapture {
    o.programs.setFilter(o.engine.rules.filter);
    const c = new AuditCapture(o);
    c.#timer = setInterval(() => c.drain(), o.pollMs ?? 20);
    return c;
  }

  /** Swaps the rules: the prefilter first, so a filter the kernel refuses keeps the old rules. */
  setRules(rules: AuditRules): void {
    this.#o.programs.setFilter(rules.filter);
    this.#o.engine.rules = rules;
  }

  #consume(): void {
    if (this.#pending >= this.#queueMax) return;
    this.#read = 0;
    this.#rb.consume();
  }

  /** Kernel counters. */
  stats(): AuditStats {
    return this.#o.programs.stats();
  }

  /**
   * Reads what is ready (while the judge is less than a full queue behind) and judges it in
   * order; resolves when the queue and the ring buffer are empty.
   */
  drain(): Promise<void> {
    this.#consume();
    if (!this.#running) {
      this.#running = (async () => {
        // One slice clock across batches: a read per batch must not restart it.
        let slice = performance.now();
        for (;;) {
          // A read ends at READ_MAX: what is left in the ring is this drain's too.
          if (!this.#queue.length) this.#consume();
          if (!this.#queue.length) break;
          const batch = this.#queue;
          this.#queue = [];
          for (const e of batch) {
            // Context lookups are mostly cached, so awaits alone would not yield to timers and
            // I/O: give the event loop (the kernel link) a turn every few milliseconds.
            if (performance.now() - slice > (this.#o.sliceMs ?? SLICE_MS)) {
              await new Promise((r) => setTimeout(r, 0));
              this.#consume(); // keep up with the kernel while a backlog is judged
              slice = performance.now();
            }
            try {
              const input = await this.#ctx.build(e);
              this.#o.onInput?.(input);
              this.#o.engine.judge(input);
            } catch {
              this.#o.engine.failed++;
            }
            this.#pending--;
          }
        }
      })().finally(() => {
        this.#running = undefined;
      });
    }
    const r = this.#running;
    return r;
  }

  /** Stops draining and closes the ring buffer (the programs stay the caller's). */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.drain();
    this.#rb.close();
  }
}
