/**
 * `status` after a source rejects a revision: periodic reloads that find nothing to push (service
 * hostnames looked up again) must not hide the rejection that is still in force.
 */
import assert from "node:assert/strict";
import { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";
import { ControlClient } from "../../agent/control/client.ts";
import type { AgentStatus } from "../../agent/daemon/status.ts";
import { startAgent } from "../fakes/agent_process.ts";
import { until } from "../fakes/until.ts";

Deno.test("status keeps showing a rejection while it is in force", async () => {
  const emu = await KernelEmulator.open();
  const agent = await startAgent(emu, {
    args: ["--config", "config.yaml"],
    prepare: (dir) =>
      Deno.writeTextFile(`${dir}/config.yaml`, "agent:\n  serviceResolveInterval: 400ms\n"),
  });
  const control = new ControlClient(agent.socket);
  const status = () => control.json<AgentStatus>("/v1/status");
  const unchanged = async () => {
    const text = await (await control.get("/metrics")).text();
    const m = /^camblet_policy_reloads_total\{outcome="unchanged"\} (\d+)$/m.exec(text);
    return m ? Number(m[1]) : 0;
  };
  try {
    await until(
      async () => (await unchanged()) > 0,
      "a periodic reload",
    );
    await Deno.writeTextFile(
      `${agent.dir}/policies/bad.yaml`,
      "- selectors: [{process:name: x}]\n  certificate: {workloadID: 'bad id'}\n",
    );
    await until(
      async () => (await status()).policy.lastReload?.outcome === "rejected",
      "the rejection",
    );
    const seen = await unchanged();
    // Several periodic reloads later the rejection is still what status shows.
    await until(async () => (await unchanged()) >= seen + 3, "reloads");
    const s = await status();
    assert.equal(s.policy.lastReload?.outcome, "rejected", JSON.stringify(s.policy.lastReload));
    assert.match(s.policy.lastReload!.problems.join("\n"), /bad\.yaml/);
    // Once fixed, an applied reload is what it shows.
    await Deno.remove(`${agent.dir}/policies/bad.yaml`);
    await Deno.writeTextFile(
      `${agent.dir}/policies/good.yaml`,
      "- selectors: [{process:name: x}]\n  certificate: {workloadID: good}\n",
    );
    await until(
      async () => (await status()).policy.lastReload?.outcome === "applied",
      "the fix to be applied",
    );
  } finally {
    control.close();
    await agent.stop("SIGTERM");
    await emu.close();
  }
  emu.assertHealthy();
});
