/**
 * Newline-delimited messages over byte streams, shared by the agent's plugin host and the SDK.
 * Lines are cut from bytes as they arrive and never held past `maxLineBytes`: a peer that sends a
 * huge message or a line without end costs at most that much memory and one pass over its bytes.
 *
 * @module
 */

import { DEFAULT_MAX_MESSAGE_BYTES } from "./protocol.ts";

/** Default longest line, in bytes: the protocol's default maximum message size (1 MiB). */
export const DEFAULT_MAX_LINE_BYTES: number = DEFAULT_MAX_MESSAGE_BYTES;

/** A line longer than the limit arrived; nothing past the limit was buffered. */
export class LineTooLongError extends RangeError {
  override name = "LineTooLongError";
  constructor(readonly limitBytes: number) {
    super(`Cannot read line: it is longer than ${limitBytes} bytes`);
  }
}

/** Options of {@linkcode readLines}. */
export interface ReadLinesOptions {
  /** Longest line accepted, in bytes, newline excluded (default {@linkcode DEFAULT_MAX_LINE_BYTES}). */
  maxLineBytes?: number;
  /**
   * A longer line: `throw` a {@linkcode LineTooLongError} (default; the stream is cancelled), or
   * `truncate` it to `maxLineBytes` and skip the rest up to its newline.
   */
  overflow?: "throw" | "truncate";
  /** Stops reading (the stream is cancelled and the generator ends). */
  signal?: AbortSignal;
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Yields each `\n`-terminated line (without the newline; a trailing `\r` is dropped), and a last
 * unterminated line at the end of the stream.
 *
 * @example
 * ```ts
 * import { readLines } from "./_lines.ts";
 * const stream = ReadableStream.from([new TextEncoder().encode("a\nb\n")]);
 * for await (const line of readLines(stream)) console.log(line); // "a", then "b"
 * ```
 */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
  options: ReadLinesOptions = {},
): AsyncGenerator<string> {
  const max = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const truncate = options.overflow === "truncate";
  const decoder = new TextDecoder();
  const text = (bytes: Uint8Array) => decoder.decode(bytes).replace(/\r$/, "");
  const reader = stream.getReader();
  const onAbort = () => void reader.cancel().catch(() => {});
  options.signal?.addEventListener("abort", onAbort, { once: true });
  let parts: Uint8Array[] = [];
  let size = 0;
  let skipping = false;
  let done = false;
  try {
    if (options.signal?.aborted) return;
    while (true) {
      const r = await reader.read();
      if (r.done) break;
      const chunk = r.value;
      let at = 0;
      while (at <= chunk.length) {
        const nl = chunk.indexOf(0x0a, at);
        const end = nl < 0 ? chunk.length : nl;
        if (!skipping && end > at) {
          if (size + end - at > max) {
            if (!truncate) throw new LineTooLongError(max);
            parts.push(chunk.subarray(at, at + max - size));
            yield text(concat(parts, max));
            [parts, size, skipping] = [[], 0, true];
          } else {
            // A piece that waits for the next chunk is copied, so no chunk is held for a byte.
            parts.push(nl < 0 ? chunk.slice(at, end) : chunk.subarray(at, end));
            size += end - at;
          }
        }
        if (nl < 0) break;
        if (skipping) skipping = false;
        else {
          const line = concat(parts, size);
          [parts, size] = [[], 0];
          yield text(line);
        }
        at = nl + 1;
      }
    }
    done = true;
    if (size > 0) yield text(concat(parts, size));
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    if (!done) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/** Serialises writes of whole lines to a stream (one JSON message per line, never interleaved). */
export class LineWriter {
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #queue: Promise<void> = Promise.resolve();
  #encoder = new TextEncoder();

  constructor(stream: WritableStream<Uint8Array>) {
    this.#writer = stream.getWriter();
  }

  /** Writes `JSON.stringify(message)` and a newline. */
  send(message: unknown): Promise<void> {
    const bytes = this.#encoder.encode(JSON.stringify(message) + "\n");
    const next = this.#queue.then(() => this.#writer.write(bytes));
    this.#queue = next.catch(() => {});
    return next;
  }

  /** Closes the stream after pending writes. */
  async close(): Promise<void> {
    await this.#queue;
    try {
      await this.#writer.close();
    } catch { /* the other side is gone */ }
  }

  /** Drops pending writes and closes the stream now (a peer that does not read). */
  async abort(): Promise<void> {
    try {
      await this.#writer.abort();
    } catch { /* already closed */ }
  }
}
