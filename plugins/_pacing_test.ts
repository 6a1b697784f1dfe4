import assert from "node:assert/strict";
import { LogBudget, timeSlices, within } from "./_pacing.ts";

Deno.test("pacing", async (t) => {
  await t.step("within: true when settled (even rejected), false after the bound", async () => {
    assert.equal(await within(Promise.resolve(), 1000), true);
    assert.equal(await within(Promise.reject(new Error("x")), 1000), true);
    const started = performance.now();
    assert.equal(await within(new Promise(() => {}), 50), false);
    assert.ok(performance.now() - started < 1000);
  });

  await t.step("timeSlices: a busy loop lets a timer run", async () => {
    const pause = timeSlices();
    let fired = false;
    setTimeout(() => fired = true, 0);
    const end = performance.now() + 200;
    while (!fired && performance.now() < end) await pause();
    assert.equal(fired, true, "a loop of awaits alone would never let the timer fire");
  });

  await t.step("LogBudget: perSecond records a second, the rest counted and reported", () => {
    let now = 5_000;
    const reports: number[] = [];
    const budget = new LogBudget(2, (n) => reports.push(n), () => now);
    const takes = () => [budget.take(), budget.take(), budget.take(), budget.take()];
    assert.deepEqual(takes(), [true, true, false, false]);
    assert.equal(budget.used, 4);
    assert.deepEqual(reports, [], "reported when the second is over");
    now += 1000;
    assert.equal(budget.take(), true);
    assert.deepEqual(reports, [2]);
    budget.take();
    budget.take();
    budget.flush();
    budget.flush();
    assert.deepEqual(reports, [2, 1]);
  });
});
