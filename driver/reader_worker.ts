/**
 * A blocking reader thread, for a reader whose owner's thread may be blocked: the kernel
 * emulator's pty master (driver/emulator/pty_device.ts), whose owner a test blocks on purpose and
 * which must still time-stamp what the agent writes when it arrives. The read loop runs alone in
 * its own Worker and posts each chunk, with the time its `read()` returned, to its owner (errno
 * belongs to the thread that called, so the loop reads it there).
 *
 * The agent's kernel worker no longer uses one: it reads the device in its own isolate
 * (driver/device_file.ts), which saves an isolate.
 *
 * The Worker's module is this file, whose top level starts the loop: see {@linkcode isWorkerNamed}.
 *
 * @module
 */
import { raiseThreadPriority } from "./ffi.ts";
import { type ReadEnd, readLoop, sharedNow } from "./transport.ts";
import { isWorkerNamed } from "./worker_code.ts";

/** Name of the reader Worker; the module's top level starts the loop when it runs under it. */
export const READER_WORKER_NAME = "camblet-kernel-reader";

/** Messages from the reader to its owner. */
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
   * delivered. The caller must then make that read return (close the pty's other side, or write
   * a byte to it) and may only reuse the fd number after `ended` resolves.
   */
  stop(): void;
  /** Ends the reader (its thread may stay blocked in `read()` until the process exits). */
  terminate(): void;
}

/**
 * Spawns a reader Worker and resolves once it runs, so that a device can be opened right before
 * its first read.
 */
export function spawnReader(bufferBytes?: number): Promise<Reader> {
  const worker = new Worker(import.meta.url, { type: "module", name: READER_WORKER_NAME });
  return new Promise<Reader>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<ReaderMessage>) => {
      if (e.data.t === "ready") resolve(readerOn(e.data.ctl, bufferBytes, worker));
    };
    worker.onerror = (e) => {
      e.preventDefault();
      worker.terminate();
      reject(new Error(`Kernel reader failed: ${e.message}`));
    };
  });
}

/** A {@linkcode Reader} on a running reader Worker and its control words. */
function readerOn(ctl: Int32Array, bufferBytes: number | undefined, worker: Worker): Reader {
  let resolveEnded!: (e: ReadEnd) => void;
  let done = false;
  const ended = new Promise<ReadEnd>((r) =>
    resolveEnded = (e) => {
      if (done) return;
      done = true;
      worker.terminate();
      r(e);
    }
  );
  let onChunk: (chunk: Uint8Array<ArrayBuffer>, at: number) => void = () => {};
  const go = (state: number) => {
    Atomics.store(ctl, STATE, state);
    Atomics.notify(ctl, STATE);
  };
  worker.onmessage = (e: MessageEvent<ReaderMessage>) => {
    const m = e.data;
    if (m.t === "chunk") return onChunk(m.chunk, m.at);
    if (m.t === "end") resolveEnded(m.end);
  };
  worker.onerror = (e) => {
    e.preventDefault();
    resolveEnded({ reason: "error", errno: 0, message: `Kernel reader failed: ${e.message}` });
  };
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
  // Not starved by busy processes: the time stamps are what the emulator measures latency by.
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
