/**
 * The kernel worker: opens the device, reads it (in this isolate: driver/device_file.ts),
 * dispatches and answers. It runs apart from the main thread because the kernel blocks every `accept()` (and
 * intercepted `connect()`) of ours while it waits for our answer: if the thread that answers were
 * the one that accepts, it would time out every time (protocol doc §1, Deno note). This thread
 * never opens a socket; handlers that may do I/O run on the main thread, and the watchdog here
 * answers for them when they are late.
 *
 * A worker entry module calls {@linkcode runKernelWorker} at its top level when
 * `isWorkerNamed(KERNEL_WORKER_NAME)`, with a setup that supplies the refusal certificate builder
 * (it must work here, without the main thread).
 *
 * @module
 */
import { CallGate } from "./call_gate.ts";
import type { LogMessage } from "./codec.ts";
import { Dispatcher, type Handlers, type Level } from "./dispatcher.ts";
import { type FileReader, fileSink, openDeviceFile, startFileReader } from "./device_file.ts";
import { DeviceError, raiseThreadPriority } from "./ffi.ts";
import { LineSplitter } from "./line_splitter.ts";
import { type MallocTrimmer, startMallocTrim } from "./malloc_trim.ts";
import type {
  CallRequest,
  CallResult,
  FromWorker,
  StartOptions,
  ToWorker,
} from "./link_protocol.ts";
import type { TaskContext } from "./payloads.ts";
import { DeviceWriter, PayloadTooLargeError } from "./transport.ts";

/** What the worker entry supplies: the parts of {@linkcode Handlers} that must run in this thread. */
export type WorkerSetupResult = Pick<Handlers, "refusal" | "prepareRefusal">;

/** Builds {@linkcode WorkerSetupResult} from `StartOptions.setup`. */
export type WorkerSetup = (setup: unknown) => WorkerSetupResult | Promise<WorkerSetupResult>;

interface Scope {
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  postMessage(m: FromWorker): void;
  close(): void;
}

function ownPidNamespace(): number {
  try {
    return Number(/\[(\d+)\]/.exec(Deno.readLinkSync("/proc/self/ns/pid"))?.[1] ?? -1);
  } catch {
    return -1;
  }
}

/** True when `task` is a thread of this process (our own accept or connect). */
function selfCheck(): (task: TaskContext) => boolean {
  const ns = ownPidNamespace();
  const pid = Deno.pid;
  return (task) => {
    if (task.namespace_ids.pid !== ns) return false;
    try {
      Deno.statSync(`/proc/${pid}/task/${task.pid}`);
      return true;
    } catch {
      return false;
    }
  };
}

/** Nice value of the threads that answer the kernel (root only; others keep their priority). */
export const ANSWER_THREAD_NICE = -10;

/** Installs the kernel worker's message loop. Call it only inside the kernel worker. */
export function runKernelWorker(setup: WorkerSetup): void {
  const scope = globalThis as unknown as Scope;
  const post = (m: FromWorker) => scope.postMessage(m);
  const event = (level: Level, message: string, props: Record<string, unknown>) =>
    post({ t: "event", level, message, props });
  const calls = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let nextRid = 1;
  let writer: DeviceWriter | undefined;
  let dispatcher: Dispatcher | undefined;
  let reader: FileReader | undefined;
  let trimmer: MallocTrimmer | undefined;

  // Calls started in one turn (the requests of one read) go in one message: per message the main
  // thread pays an event, a deserialisation and a dispatch, which under a burst add up.
  let outbox: CallRequest[] = [];
  const send = (m: CallRequest) => {
    if (outbox.push(m) > 1) return;
    queueMicrotask(() => {
      const all = outbox;
      outbox = [];
      post(all.length === 1 ? all[0]! : { t: "calls", calls: all });
    });
  };
  const call = <T>(m: CallRequest, signal?: AbortSignal): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      calls.set(m.rid, { resolve: resolve as (v: unknown) => void, reject });
      signal?.addEventListener("abort", () => post({ t: "abort", rid: m.rid }), { once: true });
      send(m);
    });
  const settle = (m: CallResult) => {
    const c = calls.get(m.rid);
    if (!c) return;
    calls.delete(m.rid);
    if (m.ok) c.resolve(m.value);
    else c.reject(new Error(m.error));
  };

  async function start(options: StartOptions): Promise<void> {
    // A busy host must not starve the answers: this thread gets more CPU than busy processes.
    // First, so that the blocking-pool threads this isolate starts (the device read runs on one)
    // inherit it: a thread's nice value is copied to the threads it creates.
    const refused = raiseThreadPriority(ANSWER_THREAD_NICE);
    if (refused) {
      event("debug", "Kernel worker keeps its scheduling priority", { error: refused });
    }
    let local: WorkerSetupResult;
    let file: Deno.FsFile;
    try {
      // Everything is ready before the open: the kernel sends requests as soon as it sees us.
      local = await setup(options.setup);
      file = await openDeviceFile(options.device);
    } catch (e) {
      const code = e instanceof DeviceError ? e.code : "SETUP";
      return post({ t: "open_failed", message: (e as Error).message, code });
    }
    writer = new DeviceWriter(fileSink(file), {
      warn: (message, props) => event("warning", message, props),
    });
    // Bounded work in flight on the main thread: what cannot start in time is refused early. Few
    // at once: the main thread interleaves the calls it runs, so 32 at once would all finish
    // together, late; 4 keep the native signing threads busy and finish one after another.
    const signGate = new CallGate({ limit: 4, maxWaitMs: 400 });
    const augmentGate = new CallGate({ limit: 16, maxWaitMs: 300 });
    const handlers: Handlers = {
      augment: (task, signal) =>
        augmentGate.run(() =>
          call<string[]>({ t: "call", rid: nextRid++, method: "augment", task }, signal)
        ),
      csrSign: (task, data, id) =>
        signGate.run(() =>
          call<string>({
            t: "call",
            rid: nextRid++,
            method: "csrSign",
            task,
            data,
            ...(id !== undefined ? { id } : {}),
          })
        ),
      refusal: (task, data) => local.refusal(task, data),
      log: (message: LogMessage) => post({ t: "log", message }),
    };
    if (local.prepareRefusal) handlers.prepareRefusal = local.prepareRefusal.bind(local);
    const w = writer;
    dispatcher = new Dispatcher({
      handlers,
      write: (line) => void w.writeAnswer(line),
      isSelf: selfCheck(),
      log: event,
      ...(options.watchdogMs !== undefined ? { watchdogMs: options.watchdogMs } : {}),
      ...(options.augmentBudgetMs !== undefined
        ? { augmentBudgetMs: options.augmentBudgetMs }
        : {}),
    });
    const d = dispatcher;
    const splitter = new LineSplitter(options.maxLineBytes);
    // glibc keeps what a burst freed: given back after work, off this thread.
    let read = false;
    trimmer = startMallocTrim(5_000, () => {
      const was = read;
      read = false;
      return was;
    });
    // Read in this isolate, one read at a time, each resolving on this thread's event loop.
    reader = startFileReader(file, (chunk, at) => {
      read = true;
      w.noteRead(at);
      for (const line of splitter.push(chunk, at)) d.handleLine(line);
    });
    reader.ended.then((end) => {
      post(
        end.reason === "eof"
          ? { t: "ended", reason: "eof" }
          : { t: "ended", reason: "error", message: end.message },
      );
    });
    post({ t: "opened" });
  }

  async function close(): Promise<void> {
    if (dispatcher && dispatcher.outstanding > 0) {
      event("info", "Closing the kernel device: answering the requests in flight first", {
        outstanding: dispatcher.outstanding,
      });
    }
    if (dispatcher) await dispatcher.drain();
    reader?.stop();
    // Give the pending read a moment to return (it keeps the device open until it does).
    if (reader) await Promise.race([reader.ended, new Promise((r) => setTimeout(r, 200))]);
    // That last read may have brought requests: the module waits on them like on any other (an
    // unanswered csr_sign crashes it), so they are answered before the device closes.
    if (dispatcher) await dispatcher.drain();
    writer?.close();
    trimmer?.stop();
    post({ t: "closed" });
  }

  scope.onmessage = (e: MessageEvent<ToWorker>) => {
    const m = e.data;
    switch (m.t) {
      case "start":
        void start(m.options);
        return;
      case "result":
        return settle(m);
      case "results":
        for (const r of m.results) settle(r);
        return;
      case "push": {
        if (!writer) {
          return post({ t: "pushed", pid: m.pid, ok: false, error: "the device is not open" });
        }
        writer.push(m.line, m.what, m.key).then(
          () => post({ t: "pushed", pid: m.pid, ok: true }),
          (err: Error) =>
            post({
              t: "pushed",
              pid: m.pid,
              ok: false,
              error: err.message,
              ...(err instanceof PayloadTooLargeError
                ? { tooLarge: { bytes: err.bytes, limit: err.limit } }
                : {}),
            }),
        );
        return;
      }
      case "stats":
        if (!dispatcher || !writer) return;
        post({
          t: "stats",
          sid: m.sid,
          dispatch: dispatcher.stats.snapshot(),
          writer: writer.snapshot(),
        });
        return;
      case "close":
        void close();
        return;
    }
  };
}
