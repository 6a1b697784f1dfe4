import assert from "node:assert/strict";
import { fakeAttestor } from "../../tests/fakes/attestor_fakes.ts";
import { PartialLabelsError } from "../../plugins/attestor/_lib/partial.ts";
import { spawnAs } from "../../tests/fakes/attestor_processes.ts";
import { Attestation, type AttestationError } from "./runner.ts";
import { taskContextFromProc } from "../../plugins/attestor/_lib/task_from_proc.ts";
import type { TaskContext } from "../../plugins/types.ts";

function self(): TaskContext {
  return taskContextFromProc(Deno.pid)!;
}

Deno.test("runner: a late collector yields a warning and the labels that are ready", async () => {
  const fast = fakeAttestor({ name: "fast" });
  const slow = fakeAttestor({ name: "slow", delayMs: 3000 });
  const a = new Attestation([fast, slow], { budgetMs: 100, sweepIntervalMs: 0 });
  try {
    const t0 = performance.now();
    const r = await a.augment(self());
    const took = performance.now() - t0;
    assert.ok(took < 400, `answered in ${took} ms`);
    assert.deepEqual(r.strings, [`fast:pid=${Deno.pid}`]);
    assert.equal(r.complete, false);
    assert.deepEqual(r.warnings, ["attestor(slow) did not answer within 100 ms"]);
  } finally {
    await a.dispose();
  }
  assert.equal(slow.aborted, 1, "dispose aborts the late collector");
  assert.ok(fast.disposed && slow.disposed);
});

Deno.test("runner: strict fails instead of answering partially", async () => {
  const a = new Attestation([
    fakeAttestor({ name: "ok" }),
    fakeAttestor({ name: "broken", fail: "socket refused" }),
  ], { strict: true, sweepIntervalMs: 0 });
  try {
    await assert.rejects(
      () => a.augmentLabels(self()),
      (e: AttestationError) => {
        assert.match(e.message, /strict/);
        assert.deepEqual(e.warnings, ["attestor(broken) failed: socket refused"]);
        return true;
      },
    );
  } finally {
    await a.dispose();
  }
});

Deno.test("runner: failing, throwing and garbage collectors never crash a request", async () => {
  const a = new Attestation([
    fakeAttestor({ name: "good" }),
    fakeAttestor({ name: "async", fail: "boom" }),
    fakeAttestor({ name: "sync", throwSync: "kaboom" }),
    fakeAttestor({ name: "junk", garbage: true }),
  ], { sweepIntervalMs: 0 });
  try {
    const r = await a.augment(self());
    assert.deepEqual(r.strings, [`good:pid=${Deno.pid}`]);
    assert.equal(r.warnings.length, 3);
    assert.match(r.warnings.join("\n"), /async\) failed: boom/);
    assert.match(r.warnings.join("\n"), /sync\) failed: kaboom/);
    assert.match(r.warnings.join("\n"), /junk\) failed: attestor\(junk\) returned string/);
  } finally {
    await a.dispose();
  }
});

Deno.test("runner: a late collector completes the cached entry in the background", async () => {
  const late = fakeAttestor({ name: "late", delayMs: 250 });
  const a = new Attestation([fakeAttestor({ name: "fast" }), late], {
    budgetMs: 50,
    sweepIntervalMs: 0,
  });
  try {
    const task = self();
    const first = await a.augment(task);
    assert.equal(first.complete, false);
    const second = await a.augment(task);
    assert.equal(second.cached, true, "an incomplete answer is cached for a short while");
    await new Promise((r) => setTimeout(r, 400));
    const third = await a.augment(task);
    assert.equal(third.cached, true);
    assert.equal(third.complete, true);
    assert.deepEqual(third.strings, [`fast:pid=${Deno.pid}`, `late:pid=${Deno.pid}`]);
    assert.deepEqual(third.warnings, []);
    assert.equal(late.calls, 1);
  } finally {
    await a.dispose();
  }
});

Deno.test("runner: cache per process life; exec/setuid (new task facts) invalidates", async (t) => {
  const counter = fakeAttestor({ name: "n" });
  const a = new Attestation([counter], { sweepIntervalMs: 0 });
  const p = await spawnAs({ uid: 4301, gid: 4301 });
  try {
    const task = taskContextFromProc(p.pid)!;
    await t.step("second request is served from the cache", async () => {
      await a.augment(task);
      const r = await a.augment(task);
      assert.equal(r.cached, true);
      assert.equal(counter.calls, 1);
    });
    await t.step("concurrent requests share one collection", async () => {
      const other = { ...task, command_name: "renamed" };
      await Promise.all([a.augment(other), a.augment(other), a.augment(other)]);
      assert.equal(counter.calls, 2);
    });
    await t.step("different uid from the kernel: collected again", async () => {
      await a.augment({ ...task, uid: 4302 });
      assert.equal(counter.calls, 3);
    });
    await t.step("the entry goes when the process exits", async () => {
      assert.ok(a.cache.pids().includes(p.pid));
      await p.stop();
      await a.sweep();
      assert.ok(!a.cache.pids().includes(p.pid));
    });
  } finally {
    await p.stop();
    await a.dispose();
  }
});

Deno.test("runner: the caller's signal (kernel deadline) ends the wait early", async () => {
  const a = new Attestation([
    fakeAttestor({ name: "fast" }),
    fakeAttestor({ name: "hang", hang: true }),
  ], {
    budgetMs: 5000,
    sweepIntervalMs: 0,
  });
  try {
    const t0 = performance.now();
    const r = await a.augment(self(), AbortSignal.timeout(80));
    assert.ok(performance.now() - t0 < 1000);
    assert.deepEqual(r.strings, [`fast:pid=${Deno.pid}`]);
  } finally {
    await a.dispose();
  }
});

Deno.test("runner: warming runs in the background and fills the cache", async () => {
  const counter = fakeAttestor({ name: "n" });
  const p = await spawnAs({ uid: 4401, gid: 4401 });
  const a = new Attestation([counter], { sweepIntervalMs: 1000 });
  try {
    const t0 = performance.now();
    const warming = a.start();
    assert.ok(performance.now() - t0 < 50, "start() does not wait for warming");
    const warmed = await warming;
    assert.ok(warmed >= 2, `warmed ${warmed}`);
    const calls = counter.calls;
    const r = await a.augment(taskContextFromProc(p.pid)!);
    assert.equal(r.cached, true);
    assert.equal(counter.calls, calls);
  } finally {
    await p.stop();
    await a.dispose();
  }
});

Deno.test("runner: partial labels from a collector are used, with a warning, and cached briefly", async () => {
  let calls = 0;
  const partial = {
    name: "partial",
    collect: () => {
      calls++;
      return Promise.reject(new PartialLabelsError("hash pending", { "p:name": ["x"] }));
    },
  };
  const a = new Attestation([partial], { sweepIntervalMs: 0, incompleteTtlMs: 60_000 });
  try {
    const task = self();
    const r = await a.augment(task);
    assert.deepEqual(r.strings, ["p:name=x"]);
    assert.deepEqual(r.warnings, ["attestor(partial) partial: hash pending"]);
    assert.equal(r.complete, false);
    assert.equal((await a.augment(task)).cached, true);
    assert.equal(calls, 1);
  } finally {
    await a.dispose();
  }
});
