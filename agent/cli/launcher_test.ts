import assert from "node:assert/strict";
import { deadLauncher, isDenoTask, isWrapper, launchChain, type Launcher } from "./launcher.ts";

Deno.test("launcher: deno task and its wrappers are recognised, shells and sudo are not", () => {
  assert.ok(isDenoTask(["deno", "task", "start"]));
  assert.ok(isDenoTask(["/usr/lib/node_modules/deno/deno", "-q", "task", "start"]));
  assert.ok(!isDenoTask(["deno", "run", "-A", "main.ts"]));
  assert.ok(isWrapper(["sh", "-c", "deno task start"]));
  assert.ok(isWrapper(["npm exec deno@2.9.6 task start"]));
  assert.ok(isWrapper(["node", "/usr/bin/npx-cli.js", "-y", "deno"]));
  assert.ok(!isWrapper(["bash"]));
  assert.ok(!isWrapper(["-bash"]));
  assert.ok(!isWrapper(["sudo", "npx", "deno"]));
  assert.ok(!isWrapper(["/lib/systemd/systemd", "--user"]));
});

Deno.test("launcher: a process not started by deno task has nothing to watch", async () => {
  // A child of this test runner (which may itself run under `deno task test`, as in CI).
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    assert.deepEqual(launchChain(child.pid), []);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
});

Deno.test("launcher: a launcher that exits is noticed", async () => {
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  const stat = await Deno.readTextFile(`/proc/${child.pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const chain: Launcher[] = [
    { pid: child.pid, ppid: Number(fields[1]), start: fields[19]!, command: "sleep 30" },
  ];
  assert.equal(deadLauncher(chain), undefined);
  child.kill("SIGKILL");
  await child.status;
  assert.equal(deadLauncher(chain)?.pid, child.pid);
  // A reused pid has another start time: still dead.
  assert.equal(deadLauncher([{ ...chain[0]!, pid: Deno.pid, start: "1" }])?.pid, Deno.pid);
});
