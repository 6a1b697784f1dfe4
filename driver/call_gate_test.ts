import assert from "node:assert/strict";
import { CallGate, OverloadedError } from "./call_gate.ts";

Deno.test("CallGate: at most `limit` at once, in order; a call that waited too long is turned away", async () => {
  let now = 0;
  const gate = new CallGate({ limit: 2, maxWaitMs: 300, now: () => now });
  let running = 0;
  let peak = 0;
  const started: number[] = [];
  const releases: (() => void)[] = [];
  const call = (i: number) =>
    gate.run(() => {
      started.push(i);
      peak = Math.max(peak, ++running);
      return new Promise<number>((r) => releases.push(() => (running--, r(i))));
    });
  const a = call(0);
  const b = call(1);
  const c = call(2);
  now = 100;
  const d = call(3);
  assert.deepEqual(started, [0, 1]);
  assert.equal(gate.waiting, 2);
  releases.shift()!();
  assert.equal(await a, 0);
  await Promise.resolve();
  assert.deepEqual(started, [0, 1, 2], "the oldest waiting call starts first");
  now = 450; // call 3 has waited 350 ms: turned away at the next look, before any slot frees
  await assert.rejects(d, OverloadedError);
  assert.equal(gate.turnedAway, 1);
  releases.shift()!();
  releases.shift()!();
  assert.deepEqual(await Promise.all([b, c]), [1, 2]);
  assert.equal(peak, 2);
  assert.equal(gate.waiting, 0);
});

Deno.test("CallGate: by the recent pace, a call that would wait too long is turned away as it arrives", async () => {
  let now = 0;
  const gate = new CallGate({ limit: 1, maxWaitMs: 300, now: () => now });
  const pending: (() => void)[] = [];
  const call = () => gate.run(() => new Promise<void>((r) => pending.push(r)));
  const first = call();
  now = 200; // one call at full concurrency takes 200 ms
  pending.shift()!();
  await first;
  const running = call();
  const second = call(); // 1 ahead: 200 ms expected, accepted
  const third = call(); // 2 ahead: 400 ms expected, accepted (the wait itself decides)
  await assert.rejects(call(), OverloadedError, "3 ahead: 600 ms expected, over 1.5 × 300");
  assert.equal(gate.turnedAway, 1);
  pending.shift()!();
  await running;
  pending.shift()!();
  await second;
  pending.shift()!();
  await third;
});

Deno.test("CallGate: the pace is the time between completions while the gate stays full", async () => {
  let now = 0;
  const gate = new CallGate({ limit: 4, maxWaitMs: 100, now: () => now });
  const pending: (() => void)[] = [];
  const call = () => gate.run(() => new Promise<void>((r) => pending.push(r)));
  // Four overlapping calls of 40 ms each, then one completion every 2 ms with calls waiting.
  const first = Array.from({ length: 12 }, call);
  now = 40;
  for (let i = 0; i < 12; i++) {
    pending.shift()!();
    await first[i];
    now += 2;
  }
  // 40 ms / 4 would say 10 ms a call (70 ahead: 700 ms, turned away); the pace says 2 ms.
  const burst = Array.from({ length: 70 }, call);
  assert.equal(gate.turnedAway, 0, "70 ahead at one every 2 ms: 140 ms, under 1.5 × 100");
  await assert.rejects(
    Array.from({ length: 10 }, call).at(-1)!,
    OverloadedError,
    "80 ahead: 160 ms expected, over 150",
  );
  // The waiting calls run in turn as slots free (the clock stands still: none waits too long).
  for (const p of burst) {
    while (pending.length > 0) pending.shift()!();
    await p;
  }
  assert.equal(gate.waiting, 0);
});
