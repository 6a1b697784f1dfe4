import assert from "node:assert/strict";
import { getLogger, type Logger } from "@logtape/logtape";
import { logStderr, readRpcAnswers, type RpcAnswer } from "./_plugin_output.ts";

const log = getLogger(["camblet", "test", "plugin-output"]);

function streamOf(text: string): ReadableStream<Uint8Array> {
  return new Blob([text]).stream();
}

async function read(text: string, maxMessageBytes = 1024) {
  const answers: RpcAnswer[] = [];
  const kills: string[] = [];
  await readRpcAnswers({
    stream: streamOf(text),
    maxMessageBytes,
    signal: new AbortController().signal,
    log,
    onAnswer: (m) => answers.push(m),
    kill: (reason) => kills.push(reason),
  });
  return { answers, kills };
}

Deno.test("readRpcAnswers passes objects on and skips blank, scalar and non-JSON lines", async () => {
  const r = await read(
    '{"id":1,"result":2}\n\nnot json\n7\n{"id":2,"error":{"code":-1,"message":"x"}}\n',
  );
  assert.deepEqual(r.answers, [{ id: 1, result: 2 }, { id: 2, error: { code: -1, message: "x" } }]);
  assert.deepEqual(r.kills, []);
});

Deno.test("readRpcAnswers kills a plugin whose message is nested too deep", async () => {
  const r = await read(`${"[".repeat(70)}${"]".repeat(70)}\n{"id":1}\n`);
  assert.deepEqual(r.answers, []);
  assert.match(r.kills[0] ?? "", /nested deeper than 64 levels/);
});

Deno.test("readRpcAnswers kills a plugin whose message is over the limit", async () => {
  const r = await read(`{"id":1,"result":"${"x".repeat(200)}"}\n`, 64);
  assert.deepEqual(r.answers, []);
  assert.deepEqual(r.kills, ["wrote a message over 64 bytes"]);
});

Deno.test("readRpcAnswers kills a plugin flooding stdout with lines that are not JSON-RPC", async () => {
  const r = await read("garbage\n".repeat(150));
  assert.equal(r.kills.length, 1);
  assert.match(r.kills[0]!, /over 100 lines a second/);
});

Deno.test("logStderr logs each line, a long one truncated, and returns when the stream closes", async () => {
  const lines: string[] = [];
  const sink = {
    info: (_msg: string, props: { line: string }) => lines.push(props.line),
    warn: () => {},
  } as unknown as Logger;
  await logStderr(streamOf(`${"y".repeat(40_000)}\n\nshort\n`), new AbortController().signal, sink);
  assert.deepEqual(lines.map((l) => l.length), [16 * 1024, 5]);
  assert.equal(lines[1], "short");
});
