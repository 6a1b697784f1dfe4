/**
 * The blocking reader thread. `read()` on the device blocks until the kernel has a request (there
 * is no poll), and errno belongs to the thread that made the call, so the read loop runs alone in
 * its own Worker and posts each chunk, with the time its `read()` returned, to its owner.
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

/** Messages from the reader. */
export type ReaderMessage =
  | { t: "ready"; ctl: Int32Array }
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
  /** Kills the worker (its thread may stay blocked in `read()` until the process exits). */
  terminate(): void;
}

/**
 * Spawns a reader Worker and resolves once it runs, so that a device can be opened right before
 * its first read (the kernel starts sending requests as soon as the device is open).
 */
export function spawnReader(bufferBytes?: number): Promise<Reader> {
  if (early && bufferBytes === undefined) {
    const reader = early;
    early = undefined;
    return reader;
  }
  return startReader(bufferBytes);
}

/** The kernel worker's reader, spawned as that worker loads (see the end of this file). */
let early: Promise<Reader> | undefined;

function startReader(bufferBytes?: number): Promise<Reader> {
  // The reader sends its control words: a message to a nested worker (the kernel worker's reader)
  // takes ~500 ms to arrive in Deno 2.9, one from it does not, so nothing is sent to it at start.
  let ctl: Int32Array | undefined;
  let terminated = false;
  const worker = new Worker(workerModuleUrl(READER_WORKER_NAME, import.meta.url), {
    type: "module",
    name: READER_WORKER_NAME,
  });
  let resolveEnded!: (e: ReadEnd) => void;
  const ended = new Promise<ReadEnd>((r) => resolveEnded = r);
  let onChunk: (chunk: Uint8Array<ArrayBuffer>, at: number) => void = () => {};
  const go = (state: number) => {
    if (!ctl) return;
    Atomics.store(ctl, STATE, state);
    Atomics.notify(ctl, STATE);
  };
  return new Promise<Reader>((resolve, reject) => {
    const reader: Reader = {
      begin(fd, fn) {
        onChunk = fn;
        // Handed over through shared memory: the first postMessage to a nested worker can take
        // ~500 ms to arrive, and the kernel is already waiting once the device is open.
        Atomics.store(ctl!, FD, fd);
        Atomics.store(ctl!, BUFFER, bufferBytes ?? 0);
        go(GO);
      },
      ended,
      stop: () => void (ctl && Atomics.store(ctl, STOP, 1)),
      terminate: () => {
        terminated = true;
        if (ctl) Atomics.store(ctl, STOP, 1);
        go(ABORT);
        worker.terminate();
        resolveEnded({ reason: "eof" });
      },
    };
    worker.onmessage = (e: MessageEvent<ReaderMessage>) => {
      const m = e.data;
      if (m.t === "ready") {
        ctl = m.ctl;
        if (terminated) return go(ABORT);
        return resolve(reader);
      }
      if (m.t === "chunk") return onChunk(m.chunk, m.at);
      worker.terminate();
      resolveEnded(m.end);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      worker.terminate();
      const message = `Kernel reader failed: ${e.message}`;
      reject(new Error(message));
      resolveEnded({ reason: "error", errno: 0, message });
    };
  });
}

/** Shared control words: state (0 wait, 1 go, 2 abort), fd, stop flag, buffer size (0 default). */
const STATE = 0;
const FD = 1;
const STOP = 2;
const BUFFER = 3;
const GO = 1;
const ABORT = 2;
const CTL_BYTES = 4 * 4;

function runReader(): void {
  const scope = globalThis as unknown as {
    postMessage(m: ReaderMessage, transfer?: Transferable[]): void;
    close(): void;
  };
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_BYTES));
  scope.postMessage({ t: "ready", ctl });
  // Block until the owner has opened the device (or gives up).
  while (Atomics.load(ctl, STATE) === 0) Atomics.wait(ctl, STATE, 0);
  if (Atomics.load(ctl, STATE) !== GO) return scope.close();
  const fd = Atomics.load(ctl, FD);
  const bufferBytes = Atomics.load(ctl, BUFFER) || undefined;
  // Reads the kernel's requests: like the kernel worker, not starved by busy processes.
  raiseThreadPriority(-10);
  const end = readLoop(
    fd,
    (chunk, at) => scope.postMessage({ t: "chunk", chunk, at }, [chunk.buffer]),
    bufferBytes,
    () => Atomics.load(ctl, STOP) !== 0,
  );
  scope.postMessage({ t: "end", end, at: sharedNow() });
  scope.close();
}

if (isWorkerNamed(READER_WORKER_NAME)) runReader();
// A nested Worker takes ~0.5 s to start in Deno 2.9: the kernel worker's starts before it is needed.
if (isWorkerNamed(KERNEL_WORKER_NAME)) (early = startReader()).catch(() => {});
