import assert from "node:assert/strict";
import { MetricsRegistry } from "./metrics.ts";

Deno.test("MetricsRegistry", () => {
  const m = new MetricsRegistry();
  const c = m.counter("x_total", "xs");
  c.inc({ b: "2", a: "1" });
  c.inc({ a: "1", b: "2" }, 2);
  assert.equal(c.get({ a: "1", b: "2" }), 3, "label order does not matter");
  assert.equal(m.counter("x_total", "xs"), c);
  m.histogram("d_seconds", "ds", [0.1, 1]).observe(0.5);
  assert.throws(() => m.histogram("x_total", "", []), TypeError);
  assert.equal(
    m.toPrometheus(),
    '# HELP x_total xs\n# TYPE x_total counter\nx_total{a="1",b="2"} 3\n' +
      "# HELP d_seconds ds\n# TYPE d_seconds histogram\n" +
      'd_seconds_bucket{le="0.1"} 0\nd_seconds_bucket{le="1"} 1\nd_seconds_bucket{le="+Inf"} 1\n' +
      "d_seconds_sum 0.5\nd_seconds_count 1\n",
  );
});
