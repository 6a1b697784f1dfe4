import assert from "node:assert/strict";
import { commandLabel, KernelStats } from "./stats.ts";

const PROTO = ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"];

Deno.test("KernelStats: prototype keys as command names are counted, not inherited", () => {
  const s = new KernelStats();
  for (const k of PROTO) {
    s.record(k, "error", 1);
    s.record(k, "ignored");
    s.malformed(k);
  }
  const snap = s.snapshot();
  assert.deepEqual(Object.keys(snap.requests), ["other"]);
  assert.equal(snap.requests["other"]?.["error"], PROTO.length);
  assert.equal(snap.latencyMs["other"]?.count, PROTO.length);
  // Malformed reasons come from the codec's fixed list; even so, keys are own data properties.
  assert.equal(Object.getOwnPropertyNames(snap.malformed).length, PROTO.length);
  assert.equal(Object.getPrototypeOf(snap.malformed), Object.prototype, "no prototype was set");
  assert.deepEqual(structuredClone(snap), snap);
});

Deno.test("KernelStats: one series per known command, whatever names the kernel lines carry", () => {
  const s = new KernelStats();
  for (let i = 0; i < 10_000; i++) s.record(`cmd${i}`, "error", 1);
  s.record("augment", "ok", 1);
  s.record("csr_sign", "signed", 2);
  const snap = s.snapshot();
  assert.deepEqual(Object.keys(snap.requests).sort(), ["augment", "csr_sign", "other"]);
  assert.equal(commandLabel("accept"), "accept");
  assert.equal(commandLabel("__proto__"), "other");
});

Deno.test("KernelStats.malformed: logs once per reason per interval and counts what it left out", () => {
  let now = 0;
  const s = new KernelStats({ now: () => now, logIntervalMs: 60_000 });
  assert.deepEqual(s.malformed("not_json", "no_id"), { log: true, suppressed: 0 });
  assert.deepEqual(s.malformed("not_json", "no_id"), { log: false, suppressed: 1 });
  assert.deepEqual(s.malformed("bad_task"), { log: true, suppressed: 0 });
  now = 30_000;
  assert.deepEqual(s.malformed("not_json"), { log: false, suppressed: 2 });
  now = 60_001;
  assert.deepEqual(s.malformed("not_json"), { log: true, suppressed: 2 });
  const snap = s.snapshot();
  assert.deepEqual(snap.malformed, { not_json: 4, bad_task: 1 });
  assert.deepEqual(snap.malformedDropped, { no_id: 2 });
});
