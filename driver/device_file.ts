/**
 * The kernel device read in the kernel worker's own isolate, without a reader Worker: `FsFile.read`
 * makes one `read(2)` on a thread of the isolate's blocking pool (on a dup of the fd) and resolves
 * on this thread, so this thread's event loop never blocks, and the error comes back with its
 * errno name (`error.code`) from the thread that read: errno no longer has to be read on the
 * thread that called. Writes are `writeSync` on the original fd, one `write(2)` each, never
 * queued behind the pending read (protocol doc §1, Deno note).
 *
 * A reader Worker (driver/reader_worker.ts) cost an isolate (~10 MiB of RSS); the emulator still
 * uses one for the pty master, whose owner's thread a test may block on purpose.
 *
 * @module
 */
import { DeviceError, ERRNO, errnoName, openErrorMessage } from "./ffi.ts";
import { type DeviceSink, READ_BUFFER_BYTES, type ReadEnd, sharedNow } from "./transport.ts";

const ERRNO_OF: Record<string, number> = Object.assign(Object.create(null), ERRNO);

/** The errno of a Deno I/O error (`code` is its name, e.g. `EBUSY`); 0 when it has none. */
export function errnoOf(e: unknown): number {
  const code = (e as { code?: unknown })?.code;
  return typeof code === "string" ? ERRNO_OF[code] ?? 0 : 0;
}

function codeOf(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  return typeof code === "string" ? code : (e as Error)?.message ?? String(e);
}

/**
 * Opens the device read-write (close-on-exec, as every Deno file); throws {@linkcode DeviceError}
 * with {@linkcode openErrorMessage}. Unlike driver/ffi.ts's `openDevice` there is no
 * `O_NOCTTY`: only a session leader without a terminal could acquire one, and only a pty (the
 * emulator's, whose agent runs as a child process) is a terminal.
 */
export async function openDeviceFile(path: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { read: true, write: true });
  } catch (e) {
    const n = errnoOf(e);
    const message = n !== 0
      ? openErrorMessage(path, n)
      : `Cannot open "${path}": ${(e as Error).message}`;
    throw new DeviceError(message, n, { cause: e });
  }
}

/** A {@linkcode DeviceSink} on `file`: `writeSync`, retried on `EINTR` (nothing was written). */
export function fileSink(file: Deno.FsFile): DeviceSink {
  let closed = false;
  return {
    write(bytes) {
      for (;;) {
        try {
          return file.writeSync(bytes);
        } catch (e) {
          if (e instanceof Deno.errors.Interrupted) continue;
          throw new DeviceError(
            `Cannot write ${bytes.byteLength} bytes to the kernel device: ${codeOf(e)}`,
            errnoOf(e),
            { cause: e },
          );
        }
      }
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        file.close();
      } catch { /* already closed */ }
    },
  };
}

/** The read loop of {@linkcode startFileReader}. */
export interface FileReader {
  /** Resolves when the loop has ended (end of file, error, or stopped after a read returned). */
  readonly ended: Promise<ReadEnd>;
  /**
   * Stops after the pending `read()` returns; what it returns is still delivered (on the kernel
   * device: requests the module now waits on). The caller makes that read return or closes the
   * file: a read in flight keeps its dup of the fd, and so the device, open until it returns.
   */
  stop(): void;
}

/**
 * Reads `file` until end of file, an error or {@linkcode FileReader.stop}, calling `onChunk` with a
 * copy of each chunk and the time its read resolved here. One read at a time, into one buffer of
 * `bufferBytes` (1 MiB: the module copies a whole message even into a smaller buffer). `EINTR`
 * (the module's "woken without a command") is retried; `EIO` (the emulator closed its side of the
 * pty: a hang-up) and a read after the file was closed are the end of the device.
 */
export function startFileReader(
  file: Pick<Deno.FsFile, "read">,
  onChunk: (chunk: Uint8Array<ArrayBuffer>, at: number) => void,
  bufferBytes: number = READ_BUFFER_BYTES,
): FileReader {
  let stopped = false;
  const buf = new Uint8Array(bufferBytes);
  const loop = async (): Promise<ReadEnd> => {
    if (stopped) return { reason: "eof" };
    let pending = file.read(buf);
    for (;;) {
      let n: number | null;
      try {
        n = await pending;
      } catch (e) {
        if (e instanceof Deno.errors.Interrupted && !stopped) {
          pending = file.read(buf);
          continue;
        }
        if (e instanceof Deno.errors.Interrupted || e instanceof Deno.errors.BadResource) {
          return { reason: "eof" };
        }
        const errno = errnoOf(e);
        if (errno === ERRNO.EIO) return { reason: "eof" };
        return {
          reason: "error",
          errno,
          message: `Cannot read the kernel device: ${errno ? errnoName(errno) : codeOf(e)}`,
        };
      }
      if (n === null || n === 0) return { reason: "eof" };
      const at = sharedNow();
      const chunk = buf.slice(0, n);
      // The next read is in flight while this chunk is handled (the kernel may have more queued).
      const last = stopped;
      if (!last) pending = file.read(buf);
      try {
        onChunk(chunk, at);
      } catch (e) {
        // Reported as the handler's own failure was with a reader Worker; the reading goes on.
        queueMicrotask(() => {
          throw e;
        });
      }
      if (last) return { reason: "eof" };
    }
  };
  return { ended: loop(), stop: () => void (stopped = true) };
}
