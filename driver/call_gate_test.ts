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
