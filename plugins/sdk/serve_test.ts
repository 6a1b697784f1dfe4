import assert from "node:assert/strict";
import { servePlugin } from "./serve.ts";
import { ERROR, PROTOCOL } from "./protocol.ts";

/** Runs the server over in-memory streams with these request lines; returns the responses by id. */
async function exchange(lines: unknown[]): Promise<Map<unknown, Record<string, unknown>>> {
  const enc = new TextEncoder();
  const input = new ReadableStream<Uint8Array>({
    start(c) {
      for (const l of lines) {
        c.enqueue(enc.encode((typeof l === "string" ? l : JSON.stringify(l)) + "\n"));
      }
      c.close();
    },
  });
  let text = "";
  const output = new WritableStream<Uint8Array>({
    write: (chunk) => void (text += new TextDecoder().decode(chunk)),
  });
  await servePlugin({
    kind: "ca",
    configure: (c) => ({ maxTtlSeconds: (c as { max: number }).max }),
    methods: { "ca.trustBundle": () => ({ trustAnchors: [] }) },
  }, { input, output });
  const out = new Map<unknown, Record<string, unknown>>();
  for (const line of text.trim().split("\n")) {
    const m = JSON.parse(line);
    out.set(m.id, m);
  }
  return out;
}

const hs = (over: Record<string, unknown> = {}) => ({
  jsonrpc: "2.0",
  id: 1,
  method: "plugin.handshake",
  params: { protocol: PROTOCOL, versions: [1], kind: "ca", name: "x", agentVersion: "t", ...over },
});

Deno.test("servePlugin", async (t) => {
  await t.step("handshake, configure, call, shutdown", async () => {
    const r = await exchange([
      hs(),
      {
        jsonrpc: "2.0",
        id: 2,
        method: "plugin.configure",
        params: { config: { max: 60 }, trustDomain: "t" },
      },
      { jsonrpc: "2.0", id: 9, method: "plugin.shutdown" },
    ]);
    assert.deepEqual(r.get(1)!.result, { protocol: PROTOCOL, version: 1, kind: "ca" });
    assert.deepEqual(r.get(2)!.result, { maxTtlSeconds: 60 });
    assert.deepEqual(r.get(9)!.result, {});
  });

  await t.step(
    "refuses other versions and kinds, calls out of order, unknown methods, bad JSON",
    async () => {
      const r = await exchange([
        hs({ versions: [2] }),
        "{oops",
      ]);
      assert.equal((r.get(1)!.error as { code: number }).code, ERROR.invalidParams);
      assert.equal((r.get(null)!.error as { code: number }).code, ERROR.parse);
      const k = await exchange([hs({ kind: "attestor" })]);
      assert.match((k.get(1)!.error as { message: string }).message, /this plugin is a ca plugin/);
      const early = await exchange([{ jsonrpc: "2.0", id: 5, method: "ca.trustBundle" }]);
      assert.match((early.get(5)!.error as { message: string }).message, /before the handshake/);
      const unknown = await exchange([hs(), { jsonrpc: "2.0", id: 6, method: "ca.nope" }]);
      assert.equal((unknown.get(6)!.error as { code: number }).code, ERROR.methodNotFound);
    },
  );
});
