import assert from "node:assert/strict";
import { ProxyMetrics } from "./metrics.ts";

Deno.test("ProxyMetrics counts per direction, outcome and policy", () => {
  const m = new ProxyMetrics();
  m.count("output", "mtls", "p1");
  m.count("output", "mtls", "p1");
  m.count("input", "denied", "p2/e1");
  m.addBytes("output", 10);
  m.activeDelta(1);
  assert.equal(m.total("mtls"), 2);
  assert.equal(m.total(undefined, "input"), 1);
  const s = m.snapshot();
  assert.deepEqual(s.connections, [
    { direction: "output", outcome: "mtls", policy: "p1", count: 2 },
    { direction: "input", outcome: "denied", policy: "p2/e1", count: 1 },
  ]);
  assert.deepEqual([s.active, s.bytes], [1, { input: 0, output: 10 }]);
  const text = m.toPrometheus();
  assert.match(
    text,
    /camblet_proxy_connections_total\{direction="output",outcome="mtls",policy="p1"\} 2/,
  );
  assert.match(text, /camblet_proxy_active_connections 1/);
});
