import assert from "node:assert/strict";
import { taskContextFromProc } from "./task_from_proc.ts";
import { until } from "../../../tests/fakes/until.ts";

Deno.test("task context from /proc: this process, as the kernel would describe it", () => {
  const t = taskContextFromProc(Deno.pid);
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

Deno.test("task context from /proc: another process, and none once it is gone", async () => {
  // A real other process: a sleeping child with its own name.
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    // Until it has exec'd: before that it is a copy of our spawning thread.
    await until(() => taskContextFromProc(child.pid)?.command_name === "sleep", "exec", 5000, 5);
    const t = taskContextFromProc(child.pid)!;
    assert.equal(t.pid, child.pid);
    assert.equal(t.command_path, Deno.realPathSync(Deno.readLinkSync(`/proc/${child.pid}/exe`)));
    assert.equal(t.uid, Deno.uid());
    const mnt = Number(/\[(\d+)\]/.exec(Deno.readLinkSync(`/proc/${child.pid}/ns/mnt`))![1]);
    assert.equal(t.namespace_ids.mnt, mnt);
    assert.equal(
      t.cgroup_path,
      Deno.readTextFileSync(`/proc/${child.pid}/cgroup`).match(/^0::(.*)$/m)![1],
    );
  } finally {
    child.kill();
    await child.status;
  }
  assert.equal(taskContextFromProc(child.pid), undefined, "a gone process has none");
});
