/**
 * The attestation cache with the real process attestor when the kernel reuses a pid: the new
 * process gets fresh labels, never the old one's, and the old entry is swept.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { Attestation } from "./runner.ts";
import { taskContextFromProc } from "../../plugins/attestor/_lib/task_from_proc.ts";
import { ProcessAttestor, type ProcessConfig } from "../../plugins/attestor/process/process.ts";
import type { TaskContext } from "../../plugins/types.ts";
import { spawnAs, spawnWithPid } from "../../tests/fakes/attestor_processes.ts";

const log = getLogger(["camblet", "test"]);
const DEFAULTS: ProcessConfig = {
  enabled: true,
  extractEnvs: false,
  envAllowList: [],
  hashTimeoutMs: 10_000,
};

function task(pid: number): TaskContext {
  const t = taskContextFromProc(pid);
  assert.ok(t, `no process ${pid}`);
  return t;
}

Deno.test("process: a reused pid is never labelled with the old process' facts", async (t) => {
  const first = await spawnAs({ uid: 4101, gid: 4101 });
  const staleTask = task(first.pid);
  const attestation = new Attestation([new ProcessAttestor(DEFAULTS, { log })], {
    sweepIntervalMs: 0,
  });
  let second;
  try {
    const before = await attestation.augment(staleTask);
    assert.ok(before.strings.includes("process:uid=4101"));
    await first.stop();
    second = await spawnWithPid(first.pid, () => spawnAs({ uid: 4102, gid: 4102, args: ["301"] }));
    const fresh = task(second.pid);

    await t.step("the kernel's task for the new process: fresh labels, not the cache", async () => {
      const r = await attestation.augment(fresh);
      assert.equal(r.cached, false);
      assert.ok(r.strings.includes("process:uid=4102"), r.strings.join("\n"));
      assert.ok(r.strings.includes("process:cmdline=sleep 301"));
      assert.ok(!r.strings.some((s) => s.includes("4101")));
    });

    await t.step("a stale task context (old uid): the kernel wins, /proc is not used", async () => {
      const labels = await new ProcessAttestor(DEFAULTS, { log }).collect(
        staleTask,
        AbortSignal.timeout(5000),
      );
      assert.deepEqual(labels["process:uid:real"], ["4101"]);
      assert.equal(
        labels["process:uid"],
        undefined,
        "effective uid unknown: /proc shows another process",
      );
      assert.equal(labels["process:cmdline"], undefined);
      assert.equal(labels["process:binary:hash"], undefined);
    });

    await t.step("the old process' cache entry is swept", async () => {
      assert.equal(await attestation.sweep(), 1);
      assert.equal(attestation.cache.size, 1);
    });
  } finally {
    await second?.stop();
    await attestation.dispose();
  }
});
