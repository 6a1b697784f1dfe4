import assert from "node:assert/strict";
import { LineTooLongError, readLines } from "./_lines.ts";

const enc = new TextEncoder();

async function collect(stream: ReadableStream<Uint8Array>, o = {}): Promise<string[]> {
  const out: string[] = [];
  for await (const line of readLines(stream, o)) out.push(line);
  return out;
}

/** A stream of `chunk` forever, counting what was pulled and whether it was cancelled. */
function endless(chunk: Uint8Array) {
  const seen = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      seen.pulled += chunk.length;
      c.enqueue(chunk.slice());
    },
    cancel() {
      seen.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, seen };
}

Deno.test("readLines", async (t) => {
  await t.step("lines split across chunks, CRLF, a multi-byte character cut in two", async () => {
    const bytes = enc.encode("one\r\ntw\u00e9\nthree");
    const chunks = [bytes.subarray(0, 2), bytes.subarray(2, 8), bytes.subarray(8)];
    assert.deepEqual(await collect(ReadableStream.from(chunks)), ["one", "tw\u00e9", "three"]);
  });

  await t.step("a line without end is refused after the limit, not buffered", async () => {
    const { stream, seen } = endless(enc.encode("a".repeat(64 * 1024)));
    await assert.rejects(collect(stream, { maxLineBytes: 1024 * 1024 }), LineTooLongError);
    assert.ok(seen.pulled <= 1024 * 1024 + 128 * 1024, `pulled ${seen.pulled} bytes`);
    assert.equal(seen.cancelled, true, "the stream is cancelled");
  });

  await t.step("a huge message with its newline far away is refused the same way", async () => {
    const { stream, seen } = endless(
      enc.encode(`{"jsonrpc":"2.0","id":1,"result":"${"A".repeat(8000)}`),
    );
    await assert.rejects(collect(stream, { maxLineBytes: 100_000 }), /longer than 100000 bytes/);
    assert.ok(seen.pulled < 120_000, `pulled ${seen.pulled} bytes`);
  });

  await t.step(
    "lines at the limit pass; truncate mode cuts and resyncs at the newline",
    async () => {
      const ok = await collect(ReadableStream.from([enc.encode("12345\n123456\nx\n")]), {
        maxLineBytes: 5,
        overflow: "truncate",
      });
      assert.deepEqual(ok, ["12345", "12345", "x"]);
      await assert.rejects(
        collect(ReadableStream.from([enc.encode("12345\n123456\n")]), { maxLineBytes: 5 }),
        LineTooLongError,
      );
    },
  );

  await t.step("an abort ends the lines and cancels the stream", async () => {
    const { stream, seen } = endless(enc.encode("line\n"));
    const ac = new AbortController();
    let n = 0;
    for await (const _ of readLines(stream, { signal: ac.signal })) if (++n === 3) ac.abort();
    assert.ok(n >= 3);
    assert.equal(seen.cancelled, true);
  });
});
