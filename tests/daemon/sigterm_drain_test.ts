/**
 * SIGTERM with kernel requests in flight: the agent answers every request it has read before it
 * closes the device and exits 0. An unanswered `csr_sign` crashes camblet-driver, so a shutdown
 * that drops one is a kernel crash, not a cosmetic failure.
 *
 * The requests are held in flight by a real dependency that does not answer: the docker attestor
 * asks a Docker Engine API stand-in (a Unix socket server) that holds every ContainerInspect until
 * the test ends. So each answer comes from the agent's own deadlines (the attestation budget gives
 * partial labels, the signing budget a refusal certificate, ~500 ms after the read), well after
 * SIGTERM: a shutdown that closes the device without waiting for them loses every one.
 */
import assert from "node:assert/strict";
import { KernelEmulator, type RequestResult } from "../../driver/emulator/kernel_emulator.ts";
import { syntheticTask, taskOf } from "../../driver/emulator/tasks.ts";
import { startAgent } from "../fakes/agent_process.ts";
import { documentedContainerInspect, json, serveUnix } from "../fakes/attestor_servers.ts";
import { until } from "../fakes/until.ts";

const containerId = (n: number) => n.toString(16).padStart(64, "a");
const dockerCgroup = (n: number) => `/system.slice/docker-${containerId(n)}.scope`;

Deno.test("SIGTERM answers the kernel requests in flight before exiting 0", async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const docker = await serveUnix(async (_req, url) => {
    const id = /\/containers\/([0-9a-f]{64})\/json$/.exec(url.pathname)?.[1];
    if (!id) return json({ message: "not found" }, 404);
    await gate;
    return json(documentedContainerInspect(id));
  });
  const dir = await Deno.makeTempDir({ prefix: "camblet-drain-" });
  const config = `${dir}/config.yaml`;
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      agent: {
        metadataCollectors: { docker: { enabled: true, socketPath: `unix://${docker.address}` } },
      },
    }),
  );
  const emu = await KernelEmulator.open({ serializeCsrSign: false });
  const agent = await startAgent(emu, { args: ["--config", config] });
  // python3 may hold the `web` identity (policies/examples/quickstart).
  const python = new Deno.Command("/usr/bin/python3", {
    args: ["-c", "import time; time.sleep(120)"],
  }).spawn();
  try {
    await until(
      () => Deno.readTextFileSync(`/proc/${python.pid}/comm`).trim() === "python3",
      "python3 to start",
    );
    const inspects = () => docker.requests.filter((r) => r.path.includes("/containers/")).length;
    const augments = 8;
    const pending: Promise<RequestResult>[] = [
      emu.csrSign("spiffe://acme.test/web", {
        ttl: "3600s",
        task: { ...taskOf(python.pid), cgroup_path: dockerCgroup(0) },
      }),
      ...Array.from(
        { length: augments },
        (_, i) => emu.augment(syntheticTask(i + 1, { cgroup_path: dockerCgroup(i + 1) })),
      ),
    ];
    // Every request has been read and is waiting on its container lookup.
    await until(() => inspects() === augments + 1, "a container lookup per request");
    assert.equal(emu.outstanding, augments + 1, "nothing answered yet");
    agent.kill("SIGTERM");
    const results = await Promise.all(pending);
    const exit = await agent.status;
    assert.match(agent.log(), /Stopping.*SIGTERM/);
    const [csr, ...labels] = results;
    assert.ok(
      csr!.outcome === "issued" || csr!.outcome === "refused",
      `csr_sign: ${csr!.outcome} ${csr!.check?.problems.join("; ") ?? ""}\n${agent.log()}`,
    );
    for (const a of labels) {
      assert.equal(a.outcome, "answered", `augment: ${a.outcome}\n${agent.log()}`);
      assert.ok(a.labels!.length > 0, "labels for the task");
    }
    assert.equal(exit.code, 0, agent.log());
    emu.assertHealthy();
  } finally {
    release();
    python.kill();
    await python.status;
    await agent.stop("SIGKILL");
    await emu.close();
    await docker.close();
    await Deno.remove(dir, { recursive: true });
  }
  emu.assertHealthy();
});
