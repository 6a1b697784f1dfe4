/**
 * The blocking reader thread. `read()` on the device blocks until the kernel has a request (there
 * is no poll, and O_NONBLOCK is ignored), and errno belongs to the thread that made the call, so
 * the read loop runs alone in its own Worker and posts each chunk, with the time its `read()`
 * returned, to its owner; the kernel worker's reader is started by the main thread and posts on a
 * port handed to the kernel worker ({@linkcode handOffReader}).
 *
 * The Worker's module is this file (in the bundle, the reader's own bundle: driver/worker_code.ts),
 * whose top level starts the loop: see {@linkcode isWorkerNamed}.
 *
 * @module
 */
import { raiseThreadPriority } from "./ffi.ts";
import { KERNEL_WORKER_NAME } from "./link_protocol.ts";
import { type ReadEnd, readLoop, sharedNow } from "./transport.ts";
import { workerModuleUrl } from "./worker_code.ts";

/** Name of the reader Worker; the module's top level starts the loop when it runs under it. */
export const READER_WORKER_NAME = "camblet-kernel-reader";

/** True when this code runs in a Worker created with `name` (`new Worker(url, { name })`). */
export function isWorkerNamed(name: string): boolean {
  const g = globalThis as unknown as { WorkerGlobalScope?: unknown; name?: string };
  return typeof g.WorkerGlobalScope !== "undefined" && g.name === name;
}

/** Messages from the reader: `ready` to its owner, the rest too or on the port sent with `ready`. */
export type ReaderMessage =
  | { t: "ready"; ctl: Int32Array; port: MessagePort }
  | { t: "chunk"; chunk: Uint8Array<ArrayBuffer>; at: number }
  | { t: "end"; end: ReadEnd; at: number };

/** A reader Worker, started and waiting for its fd. */
export interface Reader {
  /**
   * Starts the read loop on `fd`; `onChunk` runs on the caller's thread with a copy of each chunk
   * and the time its `read()` returned.
   */
  begin(fd: number, onChunk: (chunk: Uint8Array<ArrayBuffer>, at: number) => void): void;
  /** Resolves when the loop has ended (end of file, error, or stopped and woken). */
  readonly ended: Promise<ReadEnd>;
  /**
   * Asks the loop to stop after its current `read()` returns. What that read returns is still
   * delivered: on the kernel device it is requests the module now waits on. The caller must then
   * make that read return (a request from the kernel, close the pty's other side, or write a byte
   * to it) and may only reuse the fd number after `ended` resolves.
   */
  stop(): void;
  /** Ends the reader (its thread may stay blocked in `read()` until the process exits). */
  terminate(): void;
}

/**
 * A started reader as the main thread hands it to the kernel worker: its control words and the
 * port it posts chunks on. A worker started from a worker takes ~0.5 s more to start in Deno 2.9
 * (and the first message to it ~0.5 s more), so the main thread starts the kernel worker's reader.
 */
export interface ReaderHandoff {
  t: "reader";
  ctl?: Int32Array;
  port?: MessagePort;
  /** Set when the main thread could not start a reader (the kernel worker then starts its own). */
  error?: string;
}

/** Told to the kernel worker when its reader failed (the reader's errors reach the main thread). */
export interface ReaderFailed {
  t: "reader_failed";
  message: string;
}

/**
 * Spawns a reader Worker and resolves once it runs, so that a device can be opened right before
 * its first read (the kernel starts sending requests as soon as the device is open). In the kernel
 * worker, this is the reader the main thread started ({@linkcode handOffReader}).
 */
export function spawnReader(bufferBytes?: number): Promise<Reader> {
  if (early && bufferBytes === undefined) {
    const reader = early;
    early = undefined;
    return reader;
  }
  return startReaderWorker().then(({ worker, handoff }) =>
    readerOn(handoff.ctl, handoff.port, bufferBytes, worker)
  );
}

/** The kernel worker's reader, as the main thread hands it over (see the end of this file). */
let early: Promise<Reader> | undefined;
/** Ends the kernel worker's reader when the main thread reports it failed. */
let failEarly: ((message: string) => void) | undefined;

/** Starts a reader Worker on this thread; resolves with what it sends once it runs. */
function startReaderWorker(): Promise<
  { worker: Worker; handoff: { ctl: Int32Array; port: MessagePort } }
> {
  const worker = new Worker(workerModuleUrl(READER_WORKER_NAME, import.meta.url), {
    type: "module",
    name: READER_WORKER_NAME,
  });
  return new Promise((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<ReaderMessage>) => {
      if (e.data.t === "ready") {
        resolve({ worker, handoff: { ctl: e.data.ctl, port: e.data.port } });
      }
    };
    worker.onerror = (e) => {
      e.preventDefault();
      worker.terminate();
      reject(new Error(`Kernel reader failed: ${e.message}`));
    };
  });
}

/**
 * A {@linkcode Reader} on a running reader's control words and port. `worker`: the reader's
 * Worker when it is this thread's own (terminated with it, its errors reported here).
 */
function readerOn(
  ctl: Int32Array,
  port: MessagePort,
  bufferBytes: number | undefined,
  worker?: Worker,
): Reader {
  let resolveEnded!: (e: ReadEnd) => void;
  let done = false;
  const ended = new Promise<ReadEnd>((r) =>
    resolveEnded = (e) => {
      if (done) return;
      done = true;
      port.close();
      worker?.terminate();
      r(e);
    }
  );
  let onChunk: (chunk: Uint8Array<ArrayBuffer>, at: number) => void = () => {};
  const go = (state: number) => {
    Atomics.store(ctl, STATE, state);
    Atomics.notify(ctl, STATE);
  };
  const onMessage = (e: MessageEvent<ReaderMessage>) => {
    const m = e.data;
    if (m.t === "chunk") return onChunk(m.chunk, m.at);
    if (m.t === "end") resolveEnded(m.end);
  };
  if (worker) worker.onmessage = onMessage;
  else port.onmessage = onMessage;
  const fail = (message: string) => resolveEnded({ reason: "error", errno: 0, message });
  if (worker) {
    worker.onerror = (e) => {
      e.preventDefault();
      fail(`Kernel reader failed: ${e.message}`);
    };
  } else {
    failEarly = fail;
  }
  return {
    begin(fd, fn) {
      onChunk = fn;
      // Handed over through shared memory: the reader waits in Atomics.wait, not on messages.
      Atomics.store(ctl, FD, fd);
      Atomics.store(ctl, BUFFER, bufferBytes ?? 0);
      go(GO);
    },
    ended,
    stop: () => void Atomics.store(ctl, STOP, 1),
    terminate: () => {
      Atomics.store(ctl, STOP, 1);
      go(ABORT);
      resolveEnded({ reason: "eof" });
    },
  };
}

/**
 * Starts the reader of the kernel worker `kernel` on this (the main) thread and hands it over;
 * returns the reader's Worker (the caller terminates it with the kernel worker). The kernel
 * worker's {@linkcode spawnReader} resolves with it; if it cannot start, the kernel worker starts
 * its own. Its errors are passed on.
 */
export function handOffReader(kernel: Worker): Promise<Worker | undefined> {
  return startReaderWorker().then(
    ({ worker, handoff }) => {
      worker.onerror = (e) => {
        e.preventDefault();
        worker.terminate();
        const m: ReaderFailed = {
          t: "reader_failed",
          message: `Kernel reader failed: ${e.message}`,
        };
        kernel.postMessage(m);
      };
      Atomics.store(handoff.ctl, VIA_PORT, 1);
      const m: ReaderHandoff = { t: "reader", ...handoff };
      kernel.postMessage(m, [handoff.port]);
      return worker;
    },
    (e: Error) => {
      const m: ReaderHandoff = { t: "reader", error: e.message };
      kernel.postMessage(m);
      return undefined;
    },
  );
}

/**
 * Shared control words: state (0 wait, 1 go, 2 abort), fd, stop flag, buffer size (0 default),
 * where chunks go (0 to the owner, as its own worker messages; 1 on the port, handed over).
 */
const STATE = 0;
const FD = 1;
const STOP = 2;
const BUFFER = 3;
const VIA_PORT = 4;
const GO = 1;
const ABORT = 2;
const CTL_BYTES = 5 * 4;

function runReader(): void {
  const scope = globalThis as unknown as {
    postMessage(m: ReaderMessage, transfer?: Transferable[]): void;
    close(): void;
  };
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_BYTES));
  // Chunks go on a port of our own: its other end may be handed to another thread.
  const { port1, port2 } = new MessageChannel();
  scope.postMessage({ t: "ready", ctl, port: port2 }, [port2]);
  // Block until the owner has opened the device (or gives up).
  while (Atomics.load(ctl, STATE) === 0) Atomics.wait(ctl, STATE, 0);
  if (Atomics.load(ctl, STATE) !== GO) {
    port1.close();
    return scope.close();
  }
  const fd = Atomics.load(ctl, FD);
  const bufferBytes = Atomics.load(ctl, BUFFER) || undefined;
  // Reads the kernel's requests: like the kernel worker, not starved by busy processes.
  raiseThreadPriority(-10);
  // The owner's own reader answers it directly (e.g. the emulator's, whose thread may be blocked
  // and then handles these before its late deadline timers); a handed-over one on the port.
  const post = Atomics.load(ctl, VIA_PORT) === 1
    ? (m: ReaderMessage, t?: Transferable[]) => port1.postMessage(m, t ?? [])
    : (m: ReaderMessage, t?: Transferable[]) => scope.postMessage(m, t);
  const end = readLoop(
    fd,
    (chunk, at) => post({ t: "chunk", chunk, at }, [chunk.buffer]),
    bufferBytes,
    () => Atomics.load(ctl, STOP) !== 0,
  );
  post({ t: "end", end, at: sharedNow() });
  port1.close();
  scope.close();
}

/** In the kernel worker: the reader the main thread hands over, or one of its own. */
function awaitHandoff(): Promise<Reader> {
  return new Promise<Reader>((resolve, reject) => {
    const scope = globalThis as unknown as {
      addEventListener(t: "message", f: (e: MessageEvent) => void): void;
    };
    scope.addEventListener("message", (e: MessageEvent) => {
      const m = e.data as ReaderHandoff | ReaderFailed | undefined;
      if (m?.t === "reader_failed") return failEarly?.(m.message);
      if (m?.t !== "reader") return;
      if (m.ctl && m.port) return resolve(readerOn(m.ctl, m.port, undefined));
      startReaderWorker().then(
        ({ worker, handoff }) => resolve(readerOn(handoff.ctl, handoff.port, undefined, worker)),
        reject,
      );
    });
  });
}

if (isWorkerNamed(READER_WORKER_NAME)) runReader();
if (isWorkerNamed(KERNEL_WORKER_NAME)) (early = awaitHandoff()).catch(() => {});
