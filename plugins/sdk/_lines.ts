/**
 * Newline-delimited messages over byte streams, shared by the agent's plugin host and the SDK.
 *
 * @module
 */

/** Yields each `\n`-terminated line (without the newline; a trailing `\r` is dropped). */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of stream) {
    buffer += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).replace(/\r$/, "");
      buffer = buffer.slice(nl + 1);
      yield line;
    }
  }
  buffer += decoder.decode();
  if (buffer.length > 0) yield buffer;
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
}
