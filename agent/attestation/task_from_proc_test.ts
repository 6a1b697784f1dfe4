import assert from "node:assert/strict";
import { taskContextFromProc, taskContextFromProcSync } from "./task_from_proc.ts";
import { until } from "../../tests/fakes/until.ts";

Deno.test("task context from /proc: this process, as the kernel would describe it", async () => {
  const t = await taskContextFromProc(Deno.pid);
  assert.ok(t);
  assert.equal(t.pid, Deno.pid);
  assert.equal(t.uid, Deno.uid());
  assert.equal(t.gid, Deno.gid());
  assert.equal(t.command_path, Deno.execPath());
  assert.equal(t.command_name, Deno.readTextFileSync("/proc/self/comm").trim());
  const net = Number(/\[(\d+)\]/.exec(Deno.readLinkSync("/proc/self/ns/net"))![1]);
  assert.equal(t.namespace_ids.net, net);
  assert.ok(Object.values(t.namespace_ids).every((n) => n > 0), "every namespace read");
  assert.match(t.cgroup_path, /^\//);
});

Deno.test("task context from /proc: the sync reader gives the same answer", async () => {
  // A real other process: a sleeping child with its own name.
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    // Until it has exec'd: before that it is a copy of our spawning thread.
    await until(
      () => taskContextFromProcSync(child.pid)?.command_name === "sleep",
      "exec",
      5000,
      5,
    );
    assert.deepEqual(taskContextFromProcSync(child.pid), await taskContextFromProc(child.pid));
  } finally {
    child.kill();
    await child.status;
  }
  assert.equal(taskContextFromProcSync(child.pid), undefined, "a gone process has none");
  assert.equal(await taskContextFromProc(child.pid), undefined);
});
