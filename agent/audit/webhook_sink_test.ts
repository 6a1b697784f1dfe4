import assert from "node:assert/strict";
import { WebhookSink } from "./webhook_sink.ts";
import type { AuditRecord } from "./engine.ts";

const rec = (n: number) =>
  ({ kind: "audit", rule: `r${n}`, severity: "notice", output: "x" }) as unknown as AuditRecord;

Deno.test("webhook sink: batches of JSON lines over real HTTP, retried after failures, never blocking the caller", async () => {
  const got: string[] = [];
  let calls = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    calls++;
    if (calls <= 2) return new Response("busy", { status: 503 });
    assert.equal(req.headers.get("content-type"), "application/x-ndjson");
    got.push(...(await req.text()).trim().split("\n"));
    return new Response(null, { status: 204 });
  });
  try {
    const s = new WebhookSink(`http://127.0.0.1:${server.addr.port}/audit`, {
      batch: 10,
      backoffMs: 5,
    });
    const t0 = performance.now();
    for (let i = 0; i < 25; i++) s.sink(rec(i));
    assert.ok(performance.now() - t0 < 50, "push only queues");
    await s.close();
    assert.deepEqual(
      got.map((l) => JSON.parse(l).rule),
      Array.from({ length: 25 }, (_, i) => `r${i}`),
    );
    assert.equal(s.delivered, 25);
    assert.equal(s.dropped, 0);
    assert.match(s.lastError, /HTTP 503/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("webhook sink: a full queue drops the oldest, and a dead endpoint drops after the attempts; both counted", async () => {
  const s = new WebhookSink("http://127.0.0.1:9/audit", {
    queueMax: 5,
    batch: 100,
    attempts: 2,
    backoffMs: 1,
  });
  for (let i = 0; i < 12; i++) s.push(rec(i));
  await s.close();
  assert.equal(s.delivered, 0);
  assert.equal(s.dropped, 12, "7 over the bound + 5 undeliverable");
  assert.match(s.lastError, /POST http:\/\/127\.0\.0\.1:9\/audit/);
});

Deno.test("webhook sink: a bad URL is refused naming it", () => {
  assert.throws(
    () => new WebhookSink("ftp://x/y"),
    /Cannot use audit webhook "ftp:\/\/x\/y": only http/,
  );
  assert.throws(() => new WebhookSink("nope"), /"nope": not a URL/);
});
