/**
 * Answers the kernel (protocol doc, "Observed on the real module"): every request concurrently;
 * `augment` always gets labels (partial rather than an error: a failed augment leaves the
 * connection in plain TCP); `csr_sign` always gets a certificate, a refusal certificate when the
 * handler fails, returns something the module cannot read, or is still running when the watchdog
 * fires (~600 ms after the read: the kernel's 1 s counts from when it queued the request). An
 * `error` or late answer to `csr_sign` crashes the module, so neither is ever sent.
 *
 * @module
 */
import { augmentAnswer, csrAnswerProblem, taskLabels } from "./answers.ts";
import {
  type CsrSignData,
  encodeAnswer,
  encodeErrorAnswer,
  type LogMessage,
  parseKernelLine,
  type ParseResult,
} from "./codec.ts";
import { OverloadedError } from "./call_gate.ts";
import type { Line, Oversized } from "./line_splitter.ts";
import type { TaskContext } from "./payloads.ts";
import { type Deadline, DeadlineQueue } from "./deadline_queue.ts";
import { KernelStats } from "./stats.ts";
import { sharedNow } from "./transport.ts";

/** What the agent plugs into the dispatcher. */
export interface Handlers {
  /** Labels (`name=value`) for `task`; should honour `signal` (the augment budget). */
  augment(task: TaskContext, signal: AbortSignal): Promise<string[]>;
  /**
   * The `csr_sign` answer JSON (certificate, chain, trust anchors). May refuse by returning a
   * refusal. `id` is the kernel's request id (for the audit log).
   */
  csrSign(task: TaskContext, data: CsrSignData, id?: string): Promise<string>;
  /**
   * A refusal certificate answer for `data.csr`, synchronously: the watchdog cannot wait. Should
   * not throw; if it does, the last refusal sent is reused.
   */
  refusal(task: TaskContext, data: CsrSignData): string;
  /** Starts building the refusal for `data.csr` in the background, so {@linkcode refusal} has it. */
  prepareRefusal?(task: TaskContext, data: CsrSignData): void;
  /** A kernel trace line, for trace subscribers. */
  log(message: LogMessage): void;
}

/** Log levels the dispatcher reports with. */
export type Level = "debug" | "info" | "warning" | "error";

/** Options of {@linkcode Dispatcher}. */
export interface DispatcherOptions {
  handlers: Handlers;
  /** Writes one answer line to the device (one `write()`). */
  write(line: string): void;
  /** Clock of the `at` times passed in (default {@linkcode sharedNow}). */
  now?: () => number;
  /** Latest safe answer time after the read, ms (default 600). */
  watchdogMs?: number;
  /** When the augment handler's signal aborts, ms after the read (default 500). */
  augmentBudgetMs?: number;
  /**
   * True for a task of this process: answered at once from the task context (our own accept).
   * Asked only for tasks that run this process's executable (or whose path the kernel left out):
   * the check may cost a failed syscall, once per request on the answering thread.
   */
  isSelf?: (task: TaskContext) => boolean;
  /** This process's executable as the kernel prints it (default `Deno.execPath()`). */
  selfExe?: string;
  log?: (level: Level, message: string, props: Record<string, unknown>) => void;
  stats?: KernelStats;
}

const EMPTY_TASK: TaskContext = {
  uid: 0,
  gid: 0,
  pid: 0,
  command_path: "",
  command_name: "",
  cgroup_path: "",
  namespace_ids: { uts: 0, ipc: 0, mnt: 0, pid: 0, net: 0, time: 0, cgroup: 0 },
};

interface Pending {
  done: boolean;
  timers: Deadline[];
}

function execPath(): string | undefined {
  try {
    return Deno.execPath();
  } catch {
    return undefined;
  }
}

/** Routes parsed kernel messages to the handlers and writes every answer exactly once. */
export class Dispatcher {
  readonly stats: KernelStats;
  readonly #h: Handlers;
  readonly #write: (line: string) => void;
  readonly #now: () => number;
  readonly #watchdogMs: number;
  readonly #budgetMs: number;
  readonly #isSelf: (task: TaskContext) => boolean;
  readonly #selfExe: string | undefined;
  /** Every request's budget and watchdog deadlines, behind one timer. */
  readonly #deadlines: DeadlineQueue;
  readonly #log: NonNullable<DispatcherOptions["log"]>;
  #pending = new Set<Pending>();
  #idle: (() => void)[] = [];
  #lastRefusal: string | undefined;
  /** Refusal answers already checked (the same prepared refusal serves many requests). */
  #checkedRefusals = new Set<string>();
  /** Per message: when it was last logged and how many repeats were not. */
  #repeats = new Map<string, { at: number; suppressed: number }>();

  constructor(options: DispatcherOptions) {
    this.#h = options.handlers;
    this.#write = options.write;
    this.#now = options.now ?? sharedNow;
    this.#watchdogMs = options.watchdogMs ?? 600;
    this.#budgetMs = options.augmentBudgetMs ?? 500;
    this.#isSelf = options.isSelf ?? (() => false);
    this.#selfExe = options.selfExe ?? (options.isSelf ? execPath() : undefined);
    this.#deadlines = new DeadlineQueue(this.#now);
    this.#log = options.log ?? (() => {});
    this.stats = options.stats ?? new KernelStats();
  }

  /** Requests read and not yet answered. */
  get outstanding(): number {
    return this.#pending.size;
  }

  /** Resolves when every request read so far has been answered (at most the watchdog time). */
  drain(): Promise<void> {
    if (this.#pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Handles one line from the splitter (`at` = when its read returned). */
  handleLine(line: Line | Oversized): void {
    if ("oversized" in line) {
      // Only its first bytes were kept: an id there is answered like a truncated line's.
      const head = parseKernelLine(line.head);
      const m = head.ok ? head.message : undefined;
      const recovered = !head.ok ? head.recovered : {
        ...(m?.id !== undefined ? { id: m.id } : {}),
        command: m!.command === "other" ? m!.name : m!.command,
      };
      const error = `Cannot parse kernel message: a line of ${line.bytes} bytes is over the limit`;
      this.#malformed({ ok: false, reason: "oversized", error, recovered }, line.at, line.head);
      return;
    }
    if (line.text.trim() === "") return;
    this.handleParsed(parseKernelLine(line.text), line.firstAt, line.text);
  }

  /** Handles one parsed message read at `at`. */
  handleParsed(r: ParseResult, at: number, text = ""): void {
    if (!r.ok) {
      this.#malformed(r, at, text);
      return;
    }
    const m = r.message;
    switch (m.command) {
      case "augment":
        return this.#augment(m.id, m.task, at, "ok");
      case "csr_sign":
        return this.#csrSign(m.id, m.task, m.data, at);
      case "log":
        this.stats.record("log", "delivered");
        try {
          this.#h.log(m);
        } catch (e) {
          this.#log("warning", "Trace subscriber failed", { error: (e as Error).message });
        }
        return;
      case "other": {
        const answerable = m.id !== undefined && !m.isMessage;
        this.#log("warning", "Unknown kernel command", { command: m.name, id: m.id ?? "(none)" });
        if (!answerable) {
          this.stats.record(m.name, "ignored");
          return;
        }
        // The module defines accept/connect (never sent); the Go agent answered them "ok".
        const known = m.name === "accept" || m.name === "connect";
        const line = known
          ? encodeAnswer(m.id!, "ok")
          : encodeErrorAnswer(m.id!, "invalid command");
        this.#once((p) => this.#finish(p, m.name, known ? "ok" : "error", at, line));
        return;
      }
    }
  }

  #malformed(r: Extract<ParseResult, { ok: false }>, at: number, text: string): void {
    const { id, command, isMessage, task, data, labels, ambiguousId } = r.recovered;
    // augment and csr_sign always wait for an answer, whatever is_message says; an unreadable
    // command gets an answer that reads safely as both; a known other one keeps "invalid command".
    const wants = id === undefined
      ? undefined
      : command === "augment" || command === "csr_sign"
      ? command
      : command === undefined || r.reason === "bad_command"
      ? "any"
      : command === "log" || isMessage === true
      ? undefined
      : "other";
    const dropped = wants !== undefined
      ? undefined
      : id !== undefined
      ? "message"
      : ambiguousId
      ? "ambiguous_id"
      : "no_id";
    const note = this.stats.malformed(r.reason, dropped);
    if (note.log) {
      // Printable ASCII only: the line may carry terminal escapes or anything else.
      const esc = (s: string, n: number) =>
        s.slice(0, n).replace(
          /[^\x20-\x7e]/g,
          (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
        );
      this.#log("warning", "Malformed kernel line", {
        reason: r.reason,
        error: esc(r.error, 300),
        head: esc(text, 120),
        bytes: text.length,
        action: wants === undefined ? `dropped (${dropped})` : `answered as ${wants}`,
        ...(id !== undefined ? { id } : {}),
        notLoggedSinceLast: note.suppressed,
        logged: "once per reason per minute",
      });
    }
    if (id === undefined || wants === undefined) return;
    const augmentLabels = labels ?? [];
    if (wants === "augment") {
      const a = augmentAnswer(augmentLabels);
      this.#once((p) => this.#finish(p, "augment", "malformed", at, encodeAnswer(id, a.answer)));
      return;
    }
    if (wants === "other") {
      this.#once((p) =>
        this.#finish(p, command!, "error", at, encodeErrorAnswer(id, "invalid command"))
      );
      return;
    }
    // A refusal certificate: for the CSR's key when the CSR is readable (prepared in the
    // background; waited for a little), else the spare-key one. Never `error` (it crashes the
    // module), and for an unreadable command the labels too, so an augment reads it as well.
    const t = task ?? EMPTY_TASK;
    const csr = data ?? { csr: "" };
    if (data) {
      try {
        this.#h.prepareRefusal?.(t, data);
      } catch { /* the spare-key refusal below */ }
    }
    const spare = (() => {
      try {
        return this.#h.refusal(t, { csr: "" });
      } catch {
        return undefined;
      }
    })();
    const forKey = () => {
      try {
        const a = this.#h.refusal(t, csr);
        return a !== spare && !csrAnswerProblem(a) ? a : undefined;
      } catch {
        return undefined;
      }
    };
    this.#once((p) => {
      const send = (found: string | undefined) => {
        if (p.done) return;
        const answer = found !== undefined && !csrAnswerProblem(found) ? found : undefined;
        if (wants === "csr_sign") {
          if (answer !== undefined) {
            this.#finish(p, "csr_sign", "refused_malformed", at, encodeAnswer(id, answer));
          } else this.#refuse(p, id, t, csr, at, "malformed");
          return;
        }
        if (answer === undefined) {
          const a = augmentAnswer(augmentLabels).answer;
          return this.#finish(p, "unknown", "malformed", at, encodeAnswer(id, a));
        }
        const both = {
          ...JSON.parse(answer),
          labels: JSON.parse(augmentAnswer(augmentLabels).answer).labels,
        };
        this.#finish(p, "unknown", "refused_malformed", at, encodeAnswer(id, JSON.stringify(both)));
      };
      const tryAt = (delayMs: number) => {
        const a = data ? forKey() : undefined;
        if (a !== undefined || delayMs > 300) return send(a ?? spare ?? this.#lastRefusal);
        this.#after(p, at, delayMs, () => tryAt(delayMs + 25));
      };
      tryAt(data ? 0 : 400);
    });
  }

  /**
   * Logs `message` at most once a second, with the count of repeats left out: under a burst a log
   * record per request would be per-request work for both threads.
   */
  #logRepeated(level: Level, message: string, props: Record<string, unknown>): void {
    const now = this.#now();
    const r = this.#repeats.get(message);
    if (r && now - r.at < 1000) {
      r.suppressed++;
      return;
    }
    const suppressed = r?.suppressed ?? 0;
    if (this.#repeats.size > 64) this.#repeats.clear();
    this.#repeats.set(message, { at: now, suppressed: 0 });
    this.#log(level, message, suppressed > 0 ? { ...props, repeatsNotLogged: suppressed } : props);
  }

  #once(run: (p: Pending) => void): void {
    const p: Pending = { done: false, timers: [] };
    this.#pending.add(p);
    this.stats.outstanding = this.#pending.size;
    run(p);
  }

  #after(p: Pending, at: number, ms: number, fn: () => void): void {
    p.timers.push(this.#deadlines.add(at + ms, fn));
  }

  /** {@linkcode DispatcherOptions.isSelf}, asked only when the task runs our executable. */
  #self(task: TaskContext): boolean {
    const exe = this.#selfExe;
    if (exe !== undefined && task.command_path !== "" && task.command_path !== exe) return false;
    return this.#isSelf(task);
  }

  #augment(id: string, task: TaskContext | undefined, at: number, outcome: string): void {
    this.#once((p) => {
      const answer = (labels: string[], why: string) => {
        if (p.done) return;
        const a = augmentAnswer(labels);
        if (a.dropped.length > 0) {
          this.#log("warning", "Dropped labels that are not name=value", {
            id,
            dropped: a.dropped,
          });
        }
        this.#finish(p, "augment", why, at, encodeAnswer(id, a.answer));
      };
      if (task === undefined || outcome === "malformed") {
        return answer(task ? taskLabels(task) : [], outcome);
      }
      if (this.#self(task)) return answer(taskLabels(task), "self");
      const ac = new AbortController();
      this.#after(p, at, this.#budgetMs, () => ac.abort(new Error("augment budget exhausted")));
      this.#after(p, at, this.#watchdogMs, () => {
        this.#logRepeated(
          "warning",
          "Attestation still running at the watchdog; answering with task labels",
          { id, pid: task.pid },
        );
        answer(taskLabels(task), "watchdog");
      });
      let run: Promise<string[]>;
      try {
        run = this.#h.augment(task, ac.signal);
      } catch (e) {
        run = Promise.reject(e);
      }
      run.then((labels) => {
        if (!Array.isArray(labels)) {
          throw new TypeError(`expected a label list, got ${typeof labels}`);
        }
        answer(labels, outcome);
      }).catch((e: Error) => {
        if (p.done) return;
        this.#logRepeated(
          "warning",
          e instanceof OverloadedError
            ? "Too many augment requests in flight; answering with task labels"
            : "Attestation failed; answering with task labels",
          { id, pid: task.pid, error: e?.message ?? String(e) },
        );
        answer(taskLabels(task), e instanceof OverloadedError ? "overload" : "partial");
      });
    });
  }

  #csrSign(id: string, task: TaskContext, data: CsrSignData, at: number): void {
    try {
      this.#h.prepareRefusal?.(task, data);
    } catch (e) {
      this.#log("warning", "Cannot prepare a refusal certificate", {
        id,
        error: (e as Error).message,
      });
    }
    this.#once((p) => {
      this.#after(p, at, this.#watchdogMs, () => {
        this.#logRepeated(
          "error",
          "Certificate signing still running at the watchdog; answering with a refusal certificate",
          { id, pid: task.pid },
        );
        this.#refuse(p, id, task, data, at, "watchdog");
      });
      let run: Promise<string>;
      try {
        run = this.#h.csrSign(task, data, id);
      } catch (e) {
        run = Promise.reject(e);
      }
      run.then((answer) => {
        if (p.done) {
          this.#logRepeated("warning", "Certificate arrived after the watchdog answered; dropped", {
            id,
          });
          return;
        }
        const problem = typeof answer === "string" ? csrAnswerProblem(answer) : "not a string";
        if (problem) {
          this.#log("error", "Certificate answer is not readable by the module; refusing", {
            id,
            problem,
          });
          return this.#refuse(p, id, task, data, at, "invalid_answer");
        }
        this.#finish(p, "csr_sign", "signed", at, encodeAnswer(id, answer));
      }).catch((e: Error) => {
        if (p.done) return;
        if (e instanceof OverloadedError) {
          // Cannot be served before the deadline: refused now, not at the watchdog.
          this.#logRepeated(
            "warning",
            "Too many certificate requests in flight; answering with a refusal certificate",
            { id, error: e.message },
          );
          return this.#refuse(p, id, task, data, at, "overload");
        }
        this.#log("error", "Certificate signing failed; answering with a refusal certificate", {
          id,
          error: e?.message ?? String(e),
        });
        this.#refuse(p, id, task, data, at, "handler_error");
      });
    });
  }

  #refuse(
    p: Pending,
    id: string,
    task: TaskContext,
    data: CsrSignData,
    at: number,
    why: string,
  ): void {
    if (p.done) return;
    let answer: string | undefined;
    try {
      answer = this.#h.refusal(task, data);
      if (!this.#checkedRefusals.has(answer)) {
        const problem = csrAnswerProblem(answer);
        if (problem) throw new Error(`refusal answer unreadable: ${problem}`);
        if (this.#checkedRefusals.size >= 16) this.#checkedRefusals.clear();
        this.#checkedRefusals.add(answer);
      }
      this.#lastRefusal = answer;
    } catch (e) {
      answer = this.#lastRefusal;
      this.#log("error", "Cannot build a refusal certificate", {
        id,
        error: (e as Error).message,
        fallback: answer ? "previous refusal" : "none",
      });
    }
    if (answer === undefined) {
      // No safe answer exists: `error` and silence both crash the module. Count it loudly.
      this.#finish(p, "csr_sign", "unanswerable", at, undefined);
      return;
    }
    this.#finish(p, "csr_sign", `refused_${why}`, at, encodeAnswer(id, answer));
  }

  #finish(
    p: Pending,
    command: string,
    outcome: string,
    at: number,
    line: string | undefined,
  ): void {
    if (p.done) return;
    p.done = true;
    for (const t of p.timers) this.#deadlines.cancel(t);
    if (line !== undefined) {
      try {
        this.#write(line);
      } catch (e) {
        outcome = "write_failed";
        this.#log("error", "Cannot write an answer to the kernel", {
          command,
          error: (e as Error).message,
        });
      }
    }
    const latency = this.#now() - at;
    this.stats.record(command, outcome, line === undefined ? undefined : latency);
    if (latency >= 1000) {
      this.#logRepeated("error", "Answer missed the kernel's 1 s deadline", {
        command,
        latencyMs: Math.round(latency),
      });
    }
    this.#pending.delete(p);
    this.stats.outstanding = this.#pending.size;
    if (this.#pending.size === 0) {
      const idle = this.#idle;
      this.#idle = [];
      for (const resolve of idle) resolve();
    }
  }
}
