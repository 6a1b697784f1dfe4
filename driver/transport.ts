/**
 * The device transport (protocol doc §1): one blocking reader with a 1 MiB buffer, and a writer
 * that puts exactly one whole message in each `write()` and keeps within the kernel's 2 MiB
 * write budget between reads. The writer writes to an fd through libc or to a
 * {@linkcode DeviceSink} (driver/device_file.ts: the kernel worker's device, read in its own
 * isolate).
 *
 * @module
 */
import { closeFd, DeviceError, ERRNO, errnoName, readOnce, writeOnce } from "./ffi.ts";
import { KERNEL_LIMITS } from "./payloads.ts";

/** 1 MiB: the module copies a whole message into our buffer even when it is too small. */
export const READ_BUFFER_BYTES = 1024 * 1024;

/** Milliseconds on a clock shared by all threads (`performance.timeOrigin + performance.now()`). */
export function sharedNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Why the read loop ended. */
export type ReadEnd = { reason: "eof" } | { reason: "error"; errno: number; message: string };

/**
 * Reads `fd` until end of file, an error or `shouldStop()`, calling `onChunk` with a copy of each
 * chunk and the time its `read()` returned. `EINTR` (the module's "woken without a command") is
 * retried. Blocks the calling thread: run it where nothing else needs the event loop (the reader
 * worker).
 */
export function readLoop(
  fd: number,
  onChunk: (chunk: Uint8Array<ArrayBuffer>, at: number) => void,
  bufferBytes: number = READ_BUFFER_BYTES,
  shouldStop: () => boolean = () => false,
): ReadEnd {
  const buf = new Uint8Array(bufferBytes);
  for (;;) {
    if (shouldStop()) return { reason: "eof" };
    const r = readOnce(fd, buf);
    if (r.errno === undefined) {
      if (r.n === 0) return { reason: "eof" };
      onChunk(buf.slice(0, r.n), sharedNow());
      continue;
    }
    if (r.errno === ERRNO.EINTR) continue;
    // EIO: the emulator closed its side of the pty (a hang-up); anything else is a real failure.
    return {
      reason: r.errno === ERRNO.EIO ? "eof" : "error",
      errno: r.errno,
      message: `Cannot read the kernel device: ${errnoName(r.errno)}`,
    } as ReadEnd;
  }
}

/** A payload that can never fit in the kernel's write budget. `what` names the message. */
export class PayloadTooLargeError extends Error {
  override name = "PayloadTooLargeError";
  constructor(readonly what: string, readonly bytes: number, readonly limit: number) {
    super(
      `Cannot push ${what}: the message is ${formatBytes(bytes)}, over the ${formatBytes(limit)} ` +
        `the kernel accepts between two reads of the device`,
    );
  }
}

/** `1.50 MiB`, `812 B`. */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(2)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

/** Options of {@linkcode DeviceWriter}. */
export interface DeviceWriterOptions {
  /** Kernel budget between reads (default 2 MiB, `KERNEL_LIMITS.writeBudgetBytes`). */
  budgetBytes?: number;
  /** Part of the budget only answers may use, so pushes never starve them (default 256 KiB). */
  answerReserveBytes?: number;
  /** Clock for write times, shared with the reader's chunk times (default {@linkcode sharedNow}). */
  now?: () => number;
  /** Told when a write had to wait for a read or came back short. */
  warn?: (message: string, props: Record<string, unknown>) => void;
}

/** Where a {@linkcode DeviceWriter} writes: one `write()` per call, and the close of the device. */
export interface DeviceSink {
  /** One `write(2)`: returns the count the kernel took; throws {@linkcode DeviceError}. */
  write(bytes: Uint8Array<ArrayBuffer>): number;
  close(): void;
}

/** A sink on a libc fd (the emulator's pty, tests). */
export function fdSink(fd: number): DeviceSink {
  return { write: (bytes) => writeOnce(fd, bytes, "kernel device"), close: () => closeFd(fd) };
}

interface Pending {
  key: string | undefined;
  what: string;
  bytes: Uint8Array<ArrayBuffer>;
  resolve: () => void;
  reject: (e: Error) => void;
}

const enc = new TextEncoder();

/** Counters of {@linkcode DeviceWriter}, for status and metrics. */
export interface WriterStats {
  writes: number;
  bytes: number;
  deferred: number;
  shortWrites: number;
  pendingPushes: number;
  bytesSinceRead: number;
}

/**
 * Writes whole messages to the device, one per `write()`. The module's write position grows with
 * every byte and is reset only by a read; past 2 MiB every write returns 0 and a half-written line
 * would corrupt the next message. So pushes that do not fit wait for the next read (a newer
 * payload of the same kind replaces a waiting one), and a push larger than the budget is refused.
 */
export class DeviceWriter {
  readonly #sink: DeviceSink;
  readonly #budget: number;
  readonly #pushBudget: number;
  readonly #now: () => number;
  readonly #warn: NonNullable<DeviceWriterOptions["warn"]>;
  /** Recent writes (start time, bytes), to recount the window when a read's time arrives. */
  #recent: { at: number; bytes: number }[] = [];
  #sinceRead = 0;
  #queue: Pending[] = [];
  /** Bytes of a line the kernel did not take; completed before anything else is written. */
  #stuck: Uint8Array<ArrayBuffer> | undefined;
  #closed = false;
  readonly stats = { writes: 0, bytes: 0, deferred: 0, shortWrites: 0 };

  constructor(device: number | DeviceSink, options: DeviceWriterOptions = {}) {
    this.#sink = typeof device === "number" ? fdSink(device) : device;
    this.#budget = options.budgetBytes ?? KERNEL_LIMITS.writeBudgetBytes;
    this.#pushBudget = this.#budget - (options.answerReserveBytes ?? 256 * 1024);
    this.#now = options.now ?? sharedNow;
    this.#warn = options.warn ?? (() => {});
  }

  /** The largest push that can ever be written. */
  get pushLimit(): number {
    return this.#pushBudget;
  }

  /** Snapshot for status. */
  snapshot(): WriterStats {
    return { ...this.stats, pendingPushes: this.#queue.length, bytesSinceRead: this.#sinceRead };
  }

  /**
   * A `read()` returned at `at`: the kernel reset its write position then. Writes that started a
   * little before `at` may have landed after the reset, so they stay counted (erring on the side
   * of a smaller budget).
   */
  noteRead(at: number): void {
    const from = at - 50;
    this.#recent = this.#recent.filter((w) => w.at >= from);
    this.#sinceRead = this.#recent.reduce((s, w) => s + w.bytes, 0);
    this.#flush();
  }

  /** Writes an answer now (answers may use the whole budget). Returns false if it had to wait. */
  writeAnswer(line: string): boolean {
    const bytes = this.#encode(line, "answer");
    if (this.#stuck || this.#sinceRead + bytes.length > this.#budget) {
      this.#warn("Answer waits for the kernel's next read: write budget used up", {
        bytesSinceRead: this.#sinceRead,
        bytes: bytes.length,
      });
      this.stats.deferred++;
      this.#queue.unshift({
        key: undefined,
        what: "answer",
        bytes,
        resolve: () => {},
        reject: () => {},
      });
      return false;
    }
    this.#write(bytes);
    return true;
  }

  /**
   * Pushes a configuration message (`load_*`, `manage_trace_requests`). Resolves once written;
   * waits for a read when the budget since the last read is used up. `key` coalesces: a newer
   * waiting push with the same key replaces the older one (which then resolves, superseded).
   * Throws {@linkcode PayloadTooLargeError} at once when it can never fit.
   */
  push(line: string, what: string, key?: string): Promise<void> {
    const bytes = this.#encode(line, what);
    if (bytes.length > this.#pushBudget) {
      return Promise.reject(new PayloadTooLargeError(what, bytes.length, this.#pushBudget));
    }
    if (this.#closed) return Promise.reject(new Error(`Cannot push ${what}: the device is closed`));
    return new Promise<void>((resolve, reject) => {
      if (key !== undefined) {
        const i = this.#queue.findIndex((p) => p.key === key);
        if (i >= 0) {
          this.#queue[i]!.resolve();
          this.#queue.splice(i, 1);
        }
      }
      this.#queue.push({ key, what, bytes, resolve, reject });
      this.#flush();
      if (this.#queue.length > 0) {
        this.stats.deferred++;
        this.#warn(
          "Push waits for the kernel's next read: write budget since the last read used up",
          {
            what,
            bytes: bytes.length,
            bytesSinceRead: this.#sinceRead,
            budget: this.#pushBudget,
          },
        );
      }
    });
  }

  /** Rejects waiting pushes and closes the fd. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#queue) {
      p.reject(new Error(`Cannot push ${p.what}: the device was closed`));
    }
    this.#queue = [];
    this.#sink.close();
  }

  #encode(line: string, what: string): Uint8Array<ArrayBuffer> {
    const nl = line.indexOf("\n");
    if (nl !== line.length - 1) {
      throw new TypeError(`Cannot write ${what}: a message must be one line ending in "\\n"`);
    }
    return enc.encode(line);
  }

  #flush(): void {
    if (this.#closed) return;
    if (this.#stuck && !this.#completeStuck()) return;
    while (this.#queue.length > 0) {
      const p = this.#queue[0]!;
      const limit = p.what === "answer" ? this.#budget : this.#pushBudget;
      if (this.#sinceRead + p.bytes.length > limit) return;
      this.#queue.shift();
      try {
        this.#write(p.bytes);
        p.resolve();
      } catch (e) {
        p.reject(e as Error);
      }
      if (this.#stuck) return;
    }
  }

  #write(bytes: Uint8Array<ArrayBuffer>): void {
    const at = this.#now();
    const n = this.#sink.write(bytes);
    this.#account(at, n);
    if (n < bytes.length) {
      // The kernel took part of the line; finish it (a split line is fine) before anything else.
      this.stats.shortWrites++;
      this.#stuck = bytes.slice(n);
      this.#warn("Short write to the kernel device; completing the line", {
        wrote: n,
        of: bytes.length,
      });
      this.#completeStuck();
    }
  }

  #completeStuck(): boolean {
    while (this.#stuck) {
      const at = this.#now();
      const n = this.#sink.write(this.#stuck);
      this.#account(at, n);
      if (n === 0) return false;
      this.#stuck = n < this.#stuck.length ? this.#stuck.slice(n) : undefined;
    }
    return true;
  }

  #account(at: number, n: number): void {
    this.stats.writes++;
    this.stats.bytes += n;
    this.#sinceRead += n;
    this.#recent.push({ at, bytes: n });
    if (this.#recent.length > 4096) this.#recent = this.#recent.filter((w) => w.at > at - 1000);
  }
}

export { DeviceError };
