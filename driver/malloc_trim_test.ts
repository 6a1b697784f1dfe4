import assert from "node:assert/strict";
import { startMallocTrim } from "./malloc_trim.ts";

Deno.test("malloc_trim gives freed heap back, off this thread, only after work", async () => {
  let asked = 0;
  const t = startMallocTrim(20, () => {
    asked++;
    return false;
  });
  assert.ok(t, "glibc has malloc_trim");
  try {
    const rss = () => Deno.memoryUsage().rss;
    // Freed malloc memory: many small buffers copied in native code, then dropped.
    let keep: Uint8Array[] | undefined = Array.from({ length: 20_000 }, () => new Uint8Array(2048));
    keep = structuredClone(keep);
    keep = undefined;
    await t.trim(); // whatever was free before
    const before = rss();
    const t0 = performance.now();
    const released = await t.trim();
    assert.equal(typeof released, "boolean");
    assert.ok(performance.now() - t0 < 1000, "a trim is quick");
    assert.ok(rss() <= before + 4 * 1024 * 1024, "a trim does not grow the heap");
    await new Promise((r) => setTimeout(r, 70));
    assert.ok(asked >= 2, "the periodic trim asks whether there was work");
  } finally {
    t.stop();
  }
});
