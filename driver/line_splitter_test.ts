import assert from "node:assert/strict";
import { HEAD_BYTES, type Line, LineSplitter, type Oversized } from "./line_splitter.ts";

const enc = new TextEncoder();
const texts = (ls: (Line | Oversized)[]) =>
  ls.map((l) => "oversized" in l ? `<${l.bytes}>` : l.text);

Deno.test("LineSplitter joins partial reads and splits several messages in one read", () => {
  const s = new LineSplitter();
  assert.deepEqual(s.push(enc.encode('{"a":'), 1), []);
  assert.equal(s.pendingBytes, 5);
  const out = s.push(enc.encode('1}\n{"b":2}\n{"c"'), 2);
  assert.deepEqual(texts(out), ['{"a":1}', '{"b":2}']);
  assert.equal((out[0] as Line).firstAt, 1, "the first byte's read time is kept");
  assert.equal((out[0] as Line).at, 2);
  assert.deepEqual(texts(s.push(enc.encode(":3}\r\n"), 3)), ['{"c":3}'], "CRLF tolerated");
  assert.equal(s.pendingBytes, 0);
});

Deno.test("LineSplitter drops an oversized line, reports it once, and resynchronises", () => {
  const s = new LineSplitter(16);
  const out = [
    ...s.push(enc.encode("0123456789"), 1),
    ...s.push(enc.encode("0123456789abcdef"), 2),
    ...s.push(enc.encode("XYZ\nok\n"), 3),
  ];
  assert.deepEqual(texts(out), ["<29>", "ok"]);
  assert.equal((out[0] as Oversized).head, "01234567890123456789abcdef".slice(0, 26));
});

Deno.test("LineSplitter handles multi-byte characters split across reads", () => {
  const s = new LineSplitter();
  const bytes = enc.encode('{"n":"héllo"}\n');
  assert.deepEqual(texts([...s.push(bytes.slice(0, 8), 1), ...s.push(bytes.slice(8), 2)]), [
    '{"n":"héllo"}',
  ]);
});

Deno.test("LineSplitter keeps only the first HEAD_BYTES of an oversized line, however long", () => {
  const s = new LineSplitter(64 * 1024);
  const id = "6F1C0A52-7B8D-4E3F-9A61-0C2D3E4F5A6B";
  const start = enc.encode(`{"id":"${id}","pad":"`);
  const out = [...s.push(start, 1)];
  const chunk = enc.encode("p".repeat(256 * 1024));
  for (let i = 0; i < 40; i++) out.push(...s.push(chunk, 2)); // 10 MiB
  out.push(...s.push(enc.encode('"}\n{"next":1}\n'), 3));
  assert.equal(out.length, 2);
  const o = out[0] as Oversized;
  assert.ok(o.oversized);
  assert.equal(o.head.length, HEAD_BYTES);
  assert.ok(o.head.startsWith(`{"id":"${id}"`), "the id is in the head");
  assert.equal(o.bytes, start.length + 40 * chunk.length + 2, "every byte counted, none held");
  assert.equal((out[1] as Line).text, '{"next":1}');
});
