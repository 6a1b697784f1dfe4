import assert from "node:assert/strict";
import { formatDuration, formatKernelTtl, parseDuration } from "./duration.ts";

Deno.test("parseDuration reads Go durations", () => {
  assert.equal(parseDuration("24h"), 86_400_000);
  assert.equal(parseDuration("3600s"), 3_600_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("1.5h"), 5_400_000);
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("0"), 0);
  assert.equal(parseDuration("7d"), 7 * 86_400_000);
});

Deno.test("parseDuration rejects what Go rejects", () => {
  for (const bad of ["", "1", "h", "1x", "-1h", "1h 30m", "1e3s"]) {
    assert.throws(() => parseDuration(bad), SyntaxError, bad);
  }
});

Deno.test("formatKernelTtl writes whole seconds", () => {
  assert.equal(formatKernelTtl(3_600_000), "3600s");
  assert.equal(formatKernelTtl(1500), "2s");
  assert.equal(formatDuration(5_400_000), "1h30m");
  assert.equal(formatDuration(90_000), "1m30s");
  assert.equal(formatDuration(0), "0ms");
});
