/**
 * Splits the device byte stream into lines. The real module returns exactly one message per
 * `read()`, but a pty (the emulator) returns whatever is buffered: part of a message, or several.
 * Pure: the caller passes each chunk and the time its `read()` returned.
 *
 * @module
 */

/** A complete line (without `\n`; a trailing `\r` is removed) and when its last byte was read. */
export interface Line {
  text: string;
  /** Time the `read()` that completed this line returned (caller's clock, ms). */
  at: number;
  /** Time the `read()` that delivered its first byte returned. */
  firstAt: number;
  bytes: number;
}

/** A line longer than the limit: dropped, with its size and first {@linkcode HEAD_BYTES} bytes. */
export interface Oversized {
  oversized: true;
  bytes: number;
  head: string;
  at: number;
}

/** Bytes of an oversized line kept for the log and for recovering its id. */
export const HEAD_BYTES = 4096;

/** 1 MiB: the read buffer the protocol doc recommends; the module never sends more in one message. */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

/**
 * Accumulates chunks and yields complete lines. A line longer than `maxLineBytes` is discarded up
 * to its newline and reported once as {@linkcode Oversized}, so a runaway sender cannot exhaust
 * memory and the stream resynchronises at the next line.
 *
 * @example
 * ```ts
 * import { LineSplitter } from "./line_splitter.ts";
 * const s = new LineSplitter();
 * const enc = new TextEncoder();
 * s.push(enc.encode('{"a":'), 1); // []
 * s.push(enc.encode('1}\n{"b":2}\n'), 2); // two lines, the first with firstAt 1, at 2
 * ```
 */
export class LineSplitter {
  readonly #maxLineBytes: number;
  readonly #decoder = new TextDecoder();
  #parts: Uint8Array[] = [];
  #partBytes = 0;
  #firstAt = 0;
  #discarding = 0;
  #discardHead = "";

  constructor(maxLineBytes: number = DEFAULT_MAX_LINE_BYTES) {
    this.#maxLineBytes = maxLineBytes;
  }

  /** Bytes of an unfinished line held back (0 when the stream is at a line boundary). */
  get pendingBytes(): number {
    return this.#partBytes + this.#discarding;
  }

  /** Feeds one chunk; returns the lines it completed, in order. */
  push(chunk: Uint8Array, at: number): (Line | Oversized)[] {
    const out: (Line | Oversized)[] = [];
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(10, start);
      const end = nl === -1 ? chunk.length : nl;
      this.#take(chunk.subarray(start, end), at);
      if (nl === -1) break;
      out.push(this.#finish(at));
      start = nl + 1;
    }
    return out;
  }

  #take(segment: Uint8Array, at: number): void {
    if (this.#partBytes === 0 && this.#discarding === 0) this.#firstAt = at;
    if (segment.length === 0) return;
    if (this.#discarding > 0 || this.#partBytes + segment.length > this.#maxLineBytes) {
      if (this.#discarding === 0) {
        // Keep only the first bytes (an id may be there); the rest is counted, never held.
        const head = new Uint8Array(HEAD_BYTES);
        let n = 0;
        for (const p of [...this.#parts, segment]) {
          if (n >= HEAD_BYTES) break;
          const take = p.subarray(0, HEAD_BYTES - n);
          head.set(take, n);
          n += take.length;
        }
        this.#discardHead = this.#decoder.decode(head.subarray(0, n));
        this.#discarding = this.#partBytes;
        this.#parts = [];
        this.#partBytes = 0;
      }
      this.#discarding += segment.length;
      return;
    }
    // Copy: the caller reuses its read buffer.
    this.#parts.push(segment.slice());
    this.#partBytes += segment.length;
  }

  #joined(): Uint8Array {
    if (this.#parts.length === 1) return this.#parts[0]!;
    const all = new Uint8Array(this.#partBytes);
    let off = 0;
    for (const p of this.#parts) {
      all.set(p, off);
      off += p.length;
    }
    return all;
  }

  #finish(at: number): Line | Oversized {
    if (this.#discarding > 0) {
      const r: Oversized = {
        oversized: true,
        bytes: this.#discarding,
        head: this.#discardHead,
        at,
      };
      this.#discarding = 0;
      this.#discardHead = "";
      return r;
    }
    const bytes = this.#partBytes;
    let text = bytes === 0 ? "" : this.#decoder.decode(this.#joined());
    if (text.endsWith("\r")) text = text.slice(0, -1);
    this.#parts = [];
    this.#partBytes = 0;
    return { text, at, firstAt: this.#firstAt, bytes: bytes + 1 };
  }
}
