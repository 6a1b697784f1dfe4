/**
 * A file sink for audit records: JSON lines appended to a file (0600), rotated by size
 * (`file` → `file.1` → … → `file.<keep>`, the oldest dropped). Writes are synchronous and small;
 * a failing write is counted, never thrown into the capture path.
 *
 * @module
 */
import type { AuditRecord, AuditSink } from "./engine.ts";

/** Options of {@linkcode FileSink}. */
export interface FileSinkOptions {
  /** Rotate when the file would grow past this many bytes (default 16 MiB). */
  maxBytes?: number;
  /** Rotated files kept (default 5). */
  keep?: number;
}

/** JSON lines to a rotated file. */
export class FileSink {
  readonly path: string;
  #max: number;
  #keep: number;
  #file: Deno.FsFile | undefined;
  #size = 0;
  #enc = new TextEncoder();
  /** Records that could not be written. */
  failed = 0;

  constructor(path: string, options: FileSinkOptions = {}) {
    this.path = path;
    this.#max = options.maxBytes ?? 16 << 20;
    this.#keep = Math.max(1, options.keep ?? 5);
    if (!(this.#max > 0)) {
      throw new RangeError(`Cannot write audit records to "${path}": maxBytes must be positive`);
    }
    this.#open();
  }

  #open(): void {
    try {
      this.#file = Deno.openSync(this.path, { append: true, create: true, mode: 0o600 });
      this.#size = this.#file.statSync().size;
    } catch (e) {
      throw new Error(`Cannot open the audit log "${this.path}": ${(e as Error).message}`);
    }
  }

  #rotate(): void {
    this.#file?.close();
    for (let i = this.#keep - 1; i >= 1; i--) {
      try {
        Deno.renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      } catch {
        // not there yet
      }
    }
    Deno.renameSync(this.path, `${this.path}.1`);
    this.#open();
  }

  /** Appends one record. */
  write(r: AuditRecord): void {
    const bytes = this.#enc.encode(JSON.stringify(r) + "\n");
    try {
      if (this.#size > 0 && this.#size + bytes.length > this.#max) this.#rotate();
      let off = 0;
      while (off < bytes.length) off += this.#file!.writeSync(bytes.subarray(off));
      this.#size += bytes.length;
    } catch {
      this.failed++;
    }
  }

  /** The sink function for {@linkcode AuditEngine}. */
  get sink(): AuditSink {
    return (r) => this.write(r);
  }

  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }
}
