/**
 * A user-space implementation of camblet-driver's side of the device protocol, for tests,
 * benchmarks and demos. It presents a raw pty (pass {@linkcode KernelEmulator.path} as
 * `--kernel-module-device`), sends `augment`, `csr_sign` and `log` as the module does (upper-case
 * UUIDs, kernel-style CSRs, task contexts, `/` escaped as `\/`), enforces the 1 s deadline from
 * when it queued each request, checks every answer as the module reads it, and records the
 * configuration the agent pushes. An `error`, late, or unreadable answer to `csr_sign` is a kernel
 * crash (as observed on the real module): {@linkcode KernelEmulator.problems} reports it.
 *
 * Limits of a pty: write boundaries are invisible, so "one message per write()" is checked by the
 * strace test, not here; and the 2 MiB write budget is counted from the last request the emulator
 * delivered (a little stricter than the module, which counts from the agent's read).
 *
 * @module
 */
// @peculiar/x509 v2 resolves its crypto provider through tsyringe, which needs this polyfill first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import {
  type AugmentAnswerCheck,
  checkAugmentAnswer,
  checkCsrAnswer,
  type CsrAnswerCheck,
} from "./checks.ts";
import { CsrFactory } from "./csr_factory.ts";
import { KernelState } from "./kernel_state.ts";
import { PtyDevice } from "./pty_device.ts";
import { syntheticTask } from "./tasks.ts";
import { LineSplitter } from "../line_splitter.ts";
import type { TaskContext } from "../payloads.ts";
import { sharedNow } from "../transport.ts";

/** Options of {@linkcode KernelEmulator.open}. */
export interface EmulatorOptions {
  /** The module's COMMAND_TIMEOUT_SECONDS, in ms (default 1000). */
  deadlineMs?: number;
  /** One `csr_sign` at a time, like the module's mutex (default true). */
  serializeCsrSign?: boolean;
  /** The module's write buffer (default 2 MiB). */
  budgetBytes?: number;
}

/** How a request ended. */
export interface RequestResult {
  id: string;
  command: string;
  /** `answered`/`issued`/`refused`: fine. `error`, `timeout`, `invalid`: the agent failed. */
  outcome: "answered" | "issued" | "refused" | "error" | "timeout" | "invalid";
  /** From queueing to the read that completed the answer, ms. */
  latencyMs: number;
  answer?: string;
  error?: string;
  /** Augment: the labels. */
  labels?: string[];
  /** csr_sign: the certificate check. */
  check?: CsrAnswerCheck;
}

/** One message the agent wrote. */
export interface ReceivedMessage {
  command: string;
  at: number;
  bytes: number;
  message: Record<string, unknown>;
}

interface InFlight {
  id: string;
  command: string;
  queuedAt: number;
  spki?: Uint8Array;
  timer: ReturnType<typeof setTimeout>;
  resolve(r: RequestResult): void;
}

const enc = new TextEncoder();

/** Serialises like the module (parson escapes `/`). */
function kernelJson(v: unknown): string {
  return JSON.stringify(v).replaceAll("/", "\\/");
}

/** The emulated module. */
export class KernelEmulator {
  readonly device: PtyDevice;
  readonly csrs: CsrFactory;
  readonly state = new KernelState();
  /** Every message the agent wrote, in order. */
  readonly received: ReceivedMessage[] = [];
  /** What the module would have logged (dmesg), e.g. `command not found`. */
  readonly dmesg: string[] = [];
  readonly violations: string[] = [];
  /** Set when the real module would have hit its kernel BUG. */
  crash: string | undefined;
  readonly #deadline: number;
  readonly #serialize: boolean;
  readonly #budget: number;
  readonly #splitter = new LineSplitter(2 * 1024 * 1024);
  readonly #inflight = new Map<string, InFlight>();
  #csrLock: Promise<unknown> = Promise.resolve();
  #sinceDelivery = 0;
  #checks = new Set<Promise<unknown>>();
  /** Certificate checks waiting for the requests in flight (see {@linkcode #defer}). */
  #deferred: (() => void)[] = [];
  #deferTimer: ReturnType<typeof setTimeout> | undefined;
  #waiters = new Set<() => void>();
  readonly #spkis = new Map<string, Uint8Array>();

  private constructor(device: PtyDevice, csrs: CsrFactory, options: EmulatorOptions) {
    this.device = device;
    this.csrs = csrs;
    this.#deadline = options.deadlineMs ?? 1000;
    this.#serialize = options.serializeCsrSign ?? true;
    this.#budget = options.budgetBytes ?? 2 * 1024 * 1024;
  }

  /** Opens the pty and starts listening to the agent. */
  static async open(options: EmulatorOptions = {}): Promise<KernelEmulator> {
    const csrs = await CsrFactory.create();
    const ref: { emu?: KernelEmulator } = {};
    const early: [Uint8Array, number][] = [];
    const device = await PtyDevice.open((chunk, at) =>
      ref.emu ? ref.emu.#onChunk(chunk, at) : early.push([chunk, at])
    );
    const emu = ref.emu = new KernelEmulator(device, csrs, options);
    for (const [chunk, at] of early) emu.#onChunk(chunk, at);
    return emu;
  }

  /** The device path for `--kernel-module-device`. */
  get path(): string {
    return this.device.path;
  }

  /** Requests sent and not yet answered or timed out. */
  get outstanding(): number {
    return this.#inflight.size;
  }

  /** Asks for labels of `task`. */
  augment(task: TaskContext = syntheticTask(0)): Promise<RequestResult> {
    const id = crypto.randomUUID().toUpperCase();
    return this.request(
      kernelJson({ task_context: task, id, command: "augment", is_message: false }),
    );
  }

  /** Asks for `spiffeId` (and `dnsNames`) to be signed with `ttl`, as the module does on connect/accept. */
  csrSign(
    spiffeId: string,
    options: { dnsNames?: string[]; ttl?: string; task?: TaskContext } = {},
  ): Promise<RequestResult> {
    const run = async () => {
      const csr = await this.csrs.csr(spiffeId, options.dnsNames ?? []);
      const data: Record<string, string> = { csr };
      if (options.ttl !== undefined) data["ttl"] = options.ttl;
      const id = crypto.randomUUID().toUpperCase();
      return this.request(kernelJson({
        task_context: options.task ?? syntheticTask(0),
        id,
        command: "csr_sign",
        data: kernelJson(data),
        is_message: false,
      }));
    };
    if (!this.#serialize) return run();
    const next = this.#csrLock.then(run, run);
    this.#csrLock = next.catch(() => {});
    return next;
  }

  /** Sends a trace line (`is_message: true`, never answered). */
  sendLog(fields: Record<string, string>, task: TaskContext = syntheticTask(0)): void {
    const id = crypto.randomUUID().toUpperCase();
    this.#deliver(
      kernelJson({
        task_context: task,
        id,
        command: "log",
        data: kernelJson(fields),
        is_message: true,
      }) + "\n",
    );
  }

  /**
   * Sends one raw request line (without `\n`) and tracks its answer. A line that is not a request
   * (`is_message: true`, no id) resolves at once with outcome `answered`.
   */
  request(line: string): Promise<RequestResult> {
    const msg = JSON.parse(line) as {
      id?: string;
      command?: string;
      data?: string;
      is_message?: boolean;
    };
    if (msg.is_message !== false || typeof msg.id !== "string") {
      this.#deliver(line + "\n");
      return Promise.resolve({
        id: msg.id ?? "",
        command: msg.command ?? "",
        outcome: "answered",
        latencyMs: 0,
      });
    }
    let spki: Uint8Array | undefined;
    if (msg.command === "csr_sign" && typeof msg.data === "string") spki = this.#spkiOf(msg.data);
    const id = msg.id.toUpperCase();
    return new Promise<RequestResult>((resolve) => {
      const queuedAt = sharedNow();
      const f: InFlight = {
        id,
        command: msg.command ?? "",
        queuedAt,
        resolve,
        // Grace over the deadline: an answer read just in time may still be in the event queue.
        timer: setTimeout(() => this.#late(f), this.#deadline + 150),
      };
      if (spki) f.spki = spki;
      this.#inflight.set(id, f);
      this.#deliver(line + "\n");
    });
  }

  /** The CSR's key; parsed once per distinct `data` so that a burst is queued at once. */
  #spkiOf(data: string): Uint8Array {
    let spki = this.#spkis.get(data);
    if (!spki) {
      const csr = new x509.Pkcs10CertificateRequest(JSON.parse(data).csr);
      spki = new Uint8Array(csr.publicKey.rawData);
      if (this.#spkis.size >= 1024) this.#spkis.clear();
      this.#spkis.set(data, spki);
    }
    return spki;
  }

  /** Writes raw bytes to the agent in one master write (malformed-traffic tests). */
  injectRaw(bytes: string | Uint8Array<ArrayBuffer>): void {
    const b = typeof bytes === "string" ? enc.encode(bytes) : bytes;
    this.#sinceDelivery = 0;
    this.device.write(b);
  }

  /** Messages the agent wrote with this command. */
  messages(command: string): ReceivedMessage[] {
    return this.received.filter((m) => m.command === command);
  }

  /** Waits until `predicate()` holds (checked after every agent message), or throws after `timeoutMs`. */
  async waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (predicate()) return;
    await new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
    });
  }

  /** Everything the module would object to: violations, a crash, a partial line left behind. */
  problems(): string[] {
    const out = [...this.violations];
    if (this.crash) out.push(`KERNEL CRASH: ${this.crash}`);
    if (this.#splitter.pendingBytes > 0) {
      out.push(`partial line left in the kernel buffer (${this.#splitter.pendingBytes} bytes)`);
    }
    return out;
  }

  /** Throws listing {@linkcode problems} if there are any. */
  assertHealthy(): void {
    const p = this.problems();
    if (p.length > 0) {
      throw new Error(`The emulated module saw ${p.length} problem(s):\n  ${p.join("\n  ")}`);
    }
  }

  /** Times out what is in flight, waits for pending checks, and closes the pty (the agent sees EIO). */
  async close(): Promise<void> {
    this.#flushChecks();
    await Promise.allSettled([...this.#checks]);
    for (const f of [...this.#inflight.values()]) this.#timeout(f);
    await this.device.close();
  }

  #deliver(line: string): void {
    this.#sinceDelivery = 0;
    this.device.write(enc.encode(line));
  }

  /**
   * The deadline timer fired. If it fired late, this thread was blocked, and answers our reader
   * worker read in time may still be queued behind it: look again once they have been handled.
   */
  #late(f: InFlight, second = false): void {
    const overdue = sharedNow() - f.queuedAt - (this.#deadline + 150);
    if (!second && overdue > 50) {
      f.timer = setTimeout(() => this.#late(f, true), 100);
      return;
    }
    this.#timeout(f);
  }

  #timeout(f: InFlight): void {
    if (!this.#inflight.delete(f.id)) return;
    clearTimeout(f.timer);
    this.dmesg.push(`command timeout # name[${f.command}] uuid[${f.id}]`);
    if (f.command === "csr_sign") {
      this.crash ??=
        `csr_sign ${f.id} got no answer within ${this.#deadline} ms (kernel BUG at mm/slub.c:419)`;
    } else {
      this.violations.push(`${f.command} ${f.id}: no answer within ${this.#deadline} ms`);
    }
    f.resolve({
      id: f.id,
      command: f.command,
      outcome: "timeout",
      latencyMs: sharedNow() - f.queuedAt,
    });
  }

  #onChunk(chunk: Uint8Array, at: number): void {
    this.#sinceDelivery += chunk.length;
    if (this.#sinceDelivery > this.#budget) {
      this.violations.push(
        `agent wrote ${this.#sinceDelivery} bytes without a read (module budget ${this.#budget})`,
      );
      this.#sinceDelivery = 0;
    }
    for (const line of this.#splitter.push(chunk, at)) {
      if ("oversized" in line) {
        this.violations.push(
          `agent line of ${line.bytes} bytes overflows the module's 2 MiB buffer`,
        );
        continue;
      }
      this.#onLine(line.text, at, line.bytes);
    }
    if (this.#inflight.size === 0) this.#flushChecks();
    for (const w of [...this.#waiters]) w();
  }

  /**
   * Runs a certificate check once no request is in flight (or 1.2 s on): the checks parse and
   * verify in JS, and on a small host that CPU would be taken from the agent whose answers are
   * being timed. The real module's check costs next to nothing. Latency is taken at the read.
   */
  #defer(check: () => void): void {
    this.#deferred.push(check);
    this.#deferTimer ??= setTimeout(() => this.#flushChecks(), 1200);
  }

  #flushChecks(): void {
    clearTimeout(this.#deferTimer);
    this.#deferTimer = undefined;
    const run = this.#deferred;
    this.#deferred = [];
    for (const check of run) check();
  }

  #onLine(text: string, at: number, bytes: number): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch (e) {
      this.dmesg.push(`could not parse command # err[${(e as Error).message}]`);
      this.violations.push(`unparsable line from the agent: ${text.slice(0, 120)}`);
      return;
    }
    if (
      typeof msg !== "object" || msg === null || Array.isArray(msg) ||
      typeof (msg as { command?: unknown }).command !== "string"
    ) {
      this.violations.push(`message without a command: ${text.slice(0, 120)}`);
      return;
    }
    const m = msg as Record<string, unknown>;
    const command = m["command"] as string;
    this.received.push({ command, at, bytes, message: m });
    if (command === "answer") return this.#onAnswer(m, at);
    if (command === "load" || command === "reset") {
      this.violations.push(`agent sent "${command}", which breaks the module's built-in wasm`);
      return;
    }
    const problems = this.state.apply(command, m);
    for (const p of problems) {
      this.dmesg.push(p);
      this.violations.push(p);
    }
  }

  #onAnswer(m: Record<string, unknown>, at: number): void {
    const id = typeof m["id"] === "string" ? m["id"].toUpperCase() : undefined;
    const f = id === undefined ? undefined : this.#inflight.get(id);
    if (!f) {
      this.dmesg.push(`command not found # id[${id ?? ""}]`);
      this.violations.push(
        `answer for ${id === undefined ? "no id" : `unknown or timed-out id ${id}`}`,
      );
      return;
    }
    this.#inflight.delete(f.id);
    clearTimeout(f.timer);
    const latencyMs = at - f.queuedAt;
    const base = { id: f.id, command: f.command, latencyMs };
    const late = latencyMs >= this.#deadline;
    const answer = m["answer"];
    const error = m["error"];
    if (late) {
      this.dmesg.push(
        `command timeout # name[${f.command}] uuid[${f.id}]`,
        `command not found # id[${f.id}]`,
      );
    }
    if (f.command === "csr_sign") {
      if (late) {
        this.crash ??= `csr_sign ${f.id} answered after ${latencyMs.toFixed(0)} ms (kernel BUG)`;
      }
      if (error !== undefined) {
        this.crash ??= `csr_sign ${f.id} answered with error ${JSON.stringify(error)} (kernel BUG)`;
      }
      if (typeof answer !== "string") {
        this.crash ??= `csr_sign ${f.id} answered without a string answer (NULL certificate)`;
        return f.resolve({ ...base, outcome: late ? "timeout" : "error" });
      }
      this.#defer(() => {
        const check = checkCsrAnswer(answer, f.spki!).then((check) => {
          if (check.kind === "invalid") {
            this.crash ??= `csr_sign ${f.id}: unreadable certificate answer: ${
              check.problems.join("; ")
            }`;
          }
          const outcome = late ? "timeout" : check.kind === "invalid" ? "invalid" : check.kind;
          f.resolve({ ...base, outcome, answer, check });
        });
        this.#checks.add(check);
        check.finally(() => this.#checks.delete(check));
      });
      return;
    }
    if (late) {
      this.violations.push(`${f.command} ${f.id}: answered after ${latencyMs.toFixed(0)} ms`);
      return f.resolve({ ...base, outcome: "timeout" });
    }
    if (error !== undefined) {
      // An error answer to augment leaves the connection in plain TCP: the agent must not send one.
      if (f.command === "augment") {
        this.violations.push(`augment ${f.id}: answered with error ${JSON.stringify(error)}`);
      }
      return f.resolve({ ...base, outcome: "error", error: String(error) });
    }
    if (typeof answer !== "string") {
      this.violations.push(`${f.command} ${f.id}: answer is not a string (module: ENOMEM)`);
      return f.resolve({ ...base, outcome: "invalid" });
    }
    if (f.command !== "augment") return f.resolve({ ...base, outcome: "answered", answer });
    const check: AugmentAnswerCheck = checkAugmentAnswer(answer);
    for (const p of check.problems) this.violations.push(`augment ${f.id}: ${p}`);
    f.resolve({
      ...base,
      outcome: check.problems.length ? "invalid" : "answered",
      answer,
      labels: check.labels,
    });
  }
}
