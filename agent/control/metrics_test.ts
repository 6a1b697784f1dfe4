import assert from "node:assert/strict";
import { KernelStats } from "../../driver/stats.ts";
import { renderMetrics } from "./metrics.ts";

const GAUGES = {
  ready: true,
  policyRevision: 1,
  policies: 0,
  services: 0,
  reloads: {},
  plugins: {},
  traceSubscribers: 0,
};

Deno.test("metrics: kernel series stay bounded and malformed lines are counted by reason", () => {
  const s = new KernelStats();
  for (const k of ["constructor", "__proto__", "toString", "frobnicate", "augment"]) {
    s.record(k, "error", 1);
  }
  for (let i = 0; i < 1000; i++) s.record(`x${i}`, "ignored");
  s.malformed("not_json", "no_id");
  s.malformed("bad_task");
  const text = renderMetrics(
    {
      dispatch: s.snapshot(),
      writer: { writes: 0, bytes: 0, pendingPushes: 0, bytesSinceRead: 0 },
    } as unknown as Parameters<typeof renderMetrics>[0],
    GAUGES,
  );
  const requests = text.split("\n").filter((l) => l.startsWith("camblet_kernel_requests_total{"));
  assert.deepEqual(requests.sort(), [
    'camblet_kernel_requests_total{command="augment",outcome="error"} 1',
    'camblet_kernel_requests_total{command="other",outcome="error"} 4',
    'camblet_kernel_requests_total{command="other",outcome="ignored"} 1000',
  ]);
  assert.match(text, /^camblet_kernel_malformed_total\{reason="not_json"\} 1$/m);
  assert.match(text, /^camblet_kernel_malformed_total\{reason="bad_task"\} 1$/m);
  assert.match(text, /^camblet_kernel_malformed_dropped_total\{reason="no_id"\} 1$/m);
  assert.doesNotMatch(text, /constructor|__proto__|frobnicate/);
});
