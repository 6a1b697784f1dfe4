import assert from "node:assert/strict";
import { skip } from "../../../tests/_skip.ts";
import { systemClock } from "../../types.ts";
import { taskContextFromProc } from "../_lib/task_from_proc.ts";
import {
  dockerAvailable,
  ensureDockerTestImage,
  makeSleepRootfs,
  run,
  socketAnswers,
} from "../../../tests/fakes/attestor_servers.ts";
import {
  candidates,
  ContainerdAttestor,
  containerdAttestor,
  type ContainerdConfig,
} from "./containerd.ts";

const SOCKET = "/run/containerd/containerd.sock";
const realContainerd = await socketAnswers(SOCKET);

function config(over: Record<string, unknown>): ContainerdConfig {
  const r = containerdAttestor.parseConfig({ enabled: true, ...over });
  assert.ok(r.ok, JSON.stringify(r));
  return r.value;
}

async function waitForPid(ns: string, id: string): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const out = await run("ctr", ["-n", ns, "task", "ls"]);
    const line = out.split("\n").find((l) => l.startsWith(id + " "));
    const pid = Number(line?.trim().split(/\s+/)[1]);
    if (pid > 0) return pid;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no task for ${ns}/${id}`);
}

Deno.test("containerd: candidate ids from cgroup layouts", () => {
  const id = "c".repeat(64);
  const ns = ["k8s.io", "moby", "default"];
  assert.deepEqual(candidates(`/default/web`, ns), [["default", "web"]]);
  assert.deepEqual(candidates(`/docker/${id}`, ns), ns.map((n) => [n, id]));
  assert.deepEqual(
    candidates(`/kubepods.slice/kubepods-pod1.slice/cri-containerd-${id}.scope`, ["k8s.io"]),
    [["k8s.io", id]],
  );
  assert.deepEqual(candidates(`/user.slice/user-0.slice`, ns), []);
});

Deno.test({
  name: "containerd: a real container started with ctr in its own namespace",
  ignore: skip(!realContainerd && `needs containerd (${SOCKET})`),
  async fn() {
    const ns = "camblet-test";
    const id = `sleep-${crypto.randomUUID().slice(0, 8)}`;
    const rootfs = await makeSleepRootfs();
    const a = new ContainerdAttestor(config({ namespaces: ["k8s.io", ns] }), {
      clock: systemClock,
    });
    try {
      await run("ctr", [
        "-n",
        ns,
        "run",
        "-d",
        "--label",
        "app=web",
        "--rootfs",
        rootfs,
        id,
        "/bin/sleep",
        "300",
      ]);
      const pid = await waitForPid(ns, id);
      const task = taskContextFromProc(pid)!;
      assert.equal(task.cgroup_path, `/${ns}/${id}`);
      const labels = await a.collect(task, AbortSignal.timeout(5000));
      assert.deepEqual(labels["containerd:id"], [id]);
      assert.deepEqual(labels["containerd:namespace"], [ns]);
      assert.deepEqual(labels["containerd:label:app"], ["web"]);
      assert.deepEqual(labels["containerd:runtime"], ["io.containerd.runc.v2"]);
    } finally {
      await a.dispose();
      await run("ctr", ["-n", ns, "task", "kill", "-s", "SIGKILL", id]).catch(() => {});
      for (let i = 0; i < 50; i++) {
        try {
          await run("ctr", ["-n", ns, "task", "delete", id]);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      await run("ctr", ["-n", ns, "container", "delete", id]).catch(() => {});
      await Deno.remove(rootfs, { recursive: true });
    }
  },
});

Deno.test({
  name: "containerd: a Docker container through containerd (namespace moby)",
  ignore: skip(
    (!realContainerd || !(await dockerAvailable())) &&
      `needs containerd (${SOCKET}) and dockerd (/var/run/docker.sock)`,
  ),
  async fn() {
    const image = await ensureDockerTestImage();
    const id = await run("docker", ["run", "-d", "--network", "none", image]);
    const a = new ContainerdAttestor(config({}), { clock: systemClock });
    try {
      const pid = Number(await run("docker", ["inspect", "-f", "{{.State.Pid}}", id]));
      const labels = await a.collect(taskContextFromProc(pid)!, AbortSignal.timeout(5000));
      assert.deepEqual(labels["containerd:id"], [id]);
      assert.deepEqual(labels["containerd:namespace"], ["moby"]);
    } finally {
      await a.dispose();
      await run("docker", ["rm", "-f", id]);
    }
  },
});

Deno.test("containerd: a socket that is not there is an error", async () => {
  const a = new ContainerdAttestor(config({ socketPath: "/nonexistent/containerd.sock" }), {
    clock: systemClock,
  });
  try {
    const task = taskContextFromProc(Deno.pid)!;
    await assert.rejects(() =>
      a.collect({ ...task, cgroup_path: `/docker/${"ab".repeat(32)}` }, AbortSignal.timeout(2000))
    );
  } finally {
    await a.dispose();
  }
});
