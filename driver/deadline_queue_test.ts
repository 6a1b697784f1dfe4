import assert from "node:assert/strict";
import { DeadlineQueue } from "./deadline_queue.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("deadlines run in time order, out-of-order ones too, each once", async () => {
  const q = new DeadlineQueue(() => performance.now());
  const t0 = performance.now();
  const ran: string[] = [];
  q.add(t0 + 30, () => ran.push("c"));
  q.add(t0 + 10, () => ran.push("a"));
  q.add(t0 + 20, () => ran.push("b"));
  q.add(t0 - 5, () => ran.push("past"));
  assert.equal(q.size, 4);
  await sleep(60);
  assert.deepEqual(ran, ["past", "a", "b", "c"]);
  assert.equal(q.size, 0);
});

Deno.test("a cancelled deadline never runs and the last cancel clears the timer", async () => {
  const q = new DeadlineQueue(() => performance.now());
  const t0 = performance.now();
  const ran: string[] = [];
  const a = q.add(t0 + 10, () => ran.push("a"));
  const b = q.add(t0 + 20, () => ran.push("b"));
  q.cancel(a);
  q.cancel(a);
  assert.equal(q.size, 1);
  await sleep(40);
  assert.deepEqual(ran, ["b"]);
  const c = q.add(performance.now() + 1000, () => ran.push("c"));
  q.cancel(c); // the test's timer sanitizer fails if a timer is left behind
  q.cancel(b);
  assert.equal(q.size, 0);
});

Deno.test("a callback that schedules a later deadline does not delay an earlier one", async () => {
  const q = new DeadlineQueue(() => performance.now());
  const t0 = performance.now();
  const at: Record<string, number> = {};
  q.add(t0 + 5, () => {
    at["a"] = performance.now() - t0;
    q.add(t0 + 200, () => at["late"] = performance.now() - t0);
  });
  q.add(t0 + 40, () => at["b"] = performance.now() - t0);
  await sleep(100);
  assert.ok(at["b"]! >= 40 && at["b"]! < 100, `b ran at ${at["b"]} ms, expected ~40`);
  assert.equal(at["late"], undefined);
  await sleep(150);
  assert.ok(at["late"]! >= 200, `late ran at ${at["late"]}`);
});

Deno.test("a callback that cancels the rest and schedules anew: the new deadline still runs", async () => {
  // The watchdog answering a request cancels its budget (the queue empties and resets) and the
  // gate admits a queued request (a new deadline in the new array).
  const q = new DeadlineQueue(() => performance.now());
  const t0 = performance.now();
  const ran: string[] = [];
  q.add(t0 + 5, () => {
    ran.push("watchdog");
    q.cancel(budget);
    q.add(performance.now() + 10, () => ran.push("next"));
  });
  const budget = q.add(t0 + 50, () => ran.push("budget"));
  await sleep(80);
  assert.deepEqual(ran, ["watchdog", "next"]);
  assert.equal(q.size, 0);
});
