import assert from "node:assert/strict";
import { nextDelay, Poller, Serial } from "./_poller.ts";
import type { SourceCheck } from "./types.ts";

const timing = { intervalMs: 60_000, jitter: 0, retryMinMs: 1000 };

Deno.test("poller: backoff doubles from retryMinMs per failure, capped at the interval", () => {
  const delays = [0, 1, 2, 3, 4, 5, 6, 7, 8, 100].map((f) => nextDelay(timing, f));
  assert.deepEqual(delays, [
    60_000,
    1000,
    2000,
    4000,
    8000,
    16_000,
    32_000,
    60_000,
    60_000,
    60_000,
  ]);
});

Deno.test("poller: jitter spreads a fleet over ± the fraction, never beyond", () => {
  const t = { ...timing, jitter: 0.1 };
  assert.equal(nextDelay(t, 0, 0), 54_000, "lowest");
  assert.equal(nextDelay(t, 0, 0.5), 60_000, "middle");
  assert.equal(nextDelay(t, 0, 1), 66_000, "highest");
  assert.equal(nextDelay(t, 2, 0), 1800, "backoff is jittered too");
  // With real randomness: inside the band, and not all the same.
  const seen = new Set(Array.from({ length: 200 }, () => nextDelay(t, 0)));
  for (const d of seen) assert.ok(d >= 54_000 && d <= 66_000, `${d}`);
  assert.ok(seen.size > 50, `${seen.size} distinct delays of 200`);
});

Deno.test("poller: failures back off, a success returns to the interval", async () => {
  // Real timers, short: interval 400 ms, first retry 20 ms.
  const results: SourceCheck["kind"][] = ["failure", "failure", "failure", "unchanged"];
  const at: number[] = [];
  const start = performance.now();
  let done!: () => void;
  const finished = new Promise<void>((r) => done = r);
  const p = new Poller(
    () => {
      at.push(performance.now() - start);
      const kind = results.shift() ?? "unchanged";
      const r: SourceCheck = kind === "failure"
        ? { kind, problems: [] }
        : { kind: "unchanged", revision: "r1" };
      return Promise.resolve(r);
    },
    () => {
      if (at.length === 5) done();
    },
    { intervalMs: 400, jitter: 0, retryMinMs: 20 },
  );
  p.start(true);
  await finished;
  await p.stop();
  const gaps = at.map((t, i) => t - (at[i - 1] ?? 0));
  // 20 (failed before) → 40 → 80 → 160 after three failures, then 400 after the success.
  for (const [i, want] of [[0, 20], [1, 40], [2, 80], [3, 160], [4, 400]] as const) {
    assert.ok(gaps[i]! >= want - 5, `gap ${i}: ${gaps[i]!.toFixed(0)} ms >= ${want}`);
  }
  assert.ok(gaps[4]! > gaps[3]!, "the success went back to the full interval");
});

Deno.test("poller: Serial runs checks one at a time, in order", async () => {
  const s = new Serial();
  const log: string[] = [];
  const task = (name: string, ms: number) => () =>
    new Promise<void>((r) =>
      setTimeout(() => {
        log.push(name);
        r();
      }, ms)
    );
  await Promise.all([s.run(task("slow", 30)), s.run(task("fast", 1))]);
  assert.deepEqual(log, ["slow", "fast"]);
});
