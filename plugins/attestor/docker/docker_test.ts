import assert from "node:assert/strict";
import { skip } from "../../../tests/_skip.ts";
import { systemClock } from "../../types.ts";
import { taskContextFromProc } from "../_lib/task_from_proc.ts";
import { createCgroup, spawnAs } from "../../../tests/fakes/attestor_processes.ts";
import {
  dockerAvailable,
  documentedContainerInspect,
  ensureDockerTestImage,
  json,
  run,
  serveUnix,
} from "../../../tests/fakes/attestor_servers.ts";
import { DockerAttestor, dockerAttestor, type DockerConfig } from "./docker.ts";

function config(over: Partial<DockerConfig>): DockerConfig {
  const r = dockerAttestor.parseConfig({ enabled: true, ...over });
  assert.ok(r.ok);
  return r.value;
}

Deno.test("docker: documented Engine API answers over a Unix socket, for a real process in a docker-like cgroup", async () => {
  const id = Array.from(
    crypto.getRandomValues(new Uint8Array(32)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const server = await serveUnix((_req, url) => {
    const m = /^\/v1\.41\/containers\/([0-9a-f]{64})\/json$/.exec(url.pathname);
    return m && m[1] === id
      ? json(documentedContainerInspect(id))
      : json({ message: `No such container: ${m?.[1]}` }, 404);
  });
  const cg = await createCgroup(
    `camblet-test-${crypto.randomUUID().slice(0, 8)}.slice/docker-${id}.scope`,
  );
  const p = await spawnAs({ uid: 0, gid: 0 });
  const a = new DockerAttestor(
    config({ socketPath: `unix://${server.address}`, envAllowList: ["APP_*"] }),
    {
      clock: systemClock,
    },
  );
  try {
    await cg.add(p.pid);
    const task = taskContextFromProc(p.pid)!;
    assert.equal(task.cgroup_path, cg.path);
    const labels = await a.collect(task, AbortSignal.timeout(5000));
    assert.deepEqual(labels, {
      "docker:id": [id],
      "docker:name": ["boring_euclid"],
      "docker:cmdline": ["/bin/sh -c exit 9"],
      "docker:label:com.example.vendor": ["Acme"],
      "docker:label:com.example.license": ["GPL"],
      "docker:label:com.example.version": ["1.0"],
      "docker:env:APP_ENV": ["prod"],
      "docker:image:name": ["ubuntu"],
      "docker:image:hash": ["04c5d3b7b0656168630d3ba35d8889bd0e9caafcaeb3004d2bfbc47e7c5d35d2"],
      "docker:network:mode": ["bridge"],
      "docker:network:hostname": ["ba033ac44011"],
      "docker:port-binding": ["443/tcp", "80/tcp"],
    });
    // Cached per container: a second process of the container costs no API call.
    await a.collect(task, AbortSignal.timeout(5000));
    assert.equal(server.requests.length, 1);
    // A host process: no container id, no API call, no labels.
    const host = taskContextFromProc(Deno.pid)!;
    assert.deepEqual(
      await a.collect(
        { ...host, cgroup_path: "/user.slice/session-1.scope" },
        AbortSignal.timeout(5000),
      ),
      {},
    );
    assert.equal(server.requests.length, 1);
  } finally {
    a.dispose();
    await p.stop();
    await cg.remove();
    await server.close();
  }
});

Deno.test("docker: an unreachable socket is an error the runner turns into a warning", async () => {
  const a = new DockerAttestor(config({ socketPath: "/nonexistent/docker.sock" }), {
    clock: systemClock,
  });
  try {
    const task = taskContextFromProc(Deno.pid)!;
    await assert.rejects(
      () =>
        a.collect(
          { ...task, cgroup_path: `/docker/${"ab".repeat(32)}` },
          AbortSignal.timeout(2000),
        ),
      /Cannot GET \/v1\.41\/containers\/.*unix:\/nonexistent\/docker\.sock/,
    );
  } finally {
    a.dispose();
  }
});

const realDocker = await dockerAvailable();

Deno.test({
  name: "docker: a real container from the local Docker daemon",
  ignore: skip(!realDocker && "needs dockerd (/var/run/docker.sock)"),
  async fn() {
    const image = await ensureDockerTestImage();
    const name = `camblet-test-${crypto.randomUUID().slice(0, 8)}`;
    const id = await run("docker", [
      "run",
      "-d",
      "--name",
      name,
      "--network",
      "none",
      "--label",
      "app=web",
      "-e",
      "APP_MODE=prod",
      "-e",
      "DB_PASSWORD=secret",
      image,
    ]);
    const a = new DockerAttestor(config({ envAllowList: ["APP_MODE"] }), { clock: systemClock });
    try {
      const pid = Number(await run("docker", ["inspect", "-f", "{{.State.Pid}}", id]));
      const task = taskContextFromProc(pid)!;
      const labels = await a.collect(task, AbortSignal.timeout(5000));
      assert.deepEqual(labels["docker:id"], [id]);
      assert.deepEqual(labels["docker:name"], [name]);
      assert.deepEqual(labels["docker:image:name"], [image]);
      assert.match(labels["docker:image:hash"]![0]!, /^sha256:[0-9a-f]{64}$/);
      assert.deepEqual(labels["docker:label:app"], ["web"]);
      assert.deepEqual(labels["docker:env:APP_MODE"], ["prod"]);
      assert.equal(labels["docker:env:DB_PASSWORD"], undefined);
      assert.deepEqual(labels["docker:network:mode"], ["none"]);
      assert.deepEqual(labels["docker:cmdline"], ["/bin/sleep 300"]);
    } finally {
      a.dispose();
      await run("docker", ["rm", "-f", id]);
    }
  },
});
