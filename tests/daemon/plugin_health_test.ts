/**
 * The agent (a subprocess) with an external CA whose `plugin.health` says it is down: the check
 * right after start logs it, `/metrics` reports `camblet_plugin_up 0`, and `camblet-agent status`
 * prints DOWN with the plugin's reason. The agent stays ready: a CA that is down is reported, not
 * fatal.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";
import { ControlClient } from "../../agent/control/client.ts";
import type { AgentStatus } from "../../agent/daemon/status.ts";
import { runCli } from "../cli/_run.ts";
import { startAgent } from "../fakes/agent_process.ts";
import { FAKE_PLUGIN } from "../fakes/ca_plugins.ts";

Deno.test("an unhealthy external CA: logged, camblet_plugin_up 0, status DOWN with why", async () => {
  const dir = await Deno.makeTempDir({ prefix: "plugin-health-agent-" });
  const healthFile = join(dir, "health");
  await Deno.writeTextFile(healthFile, "upstream sealed");
  const config = join(dir, "config.yaml");
  await Deno.writeTextFile(
    config,
    `agent:\n  ca: fake\nplugins:\n  external:\n    - kind: ca\n      name: fake\n` +
      `      path: ${FAKE_PLUGIN}\n      args: ["--health-file=${healthFile}"]\n` +
      `      startTimeout: 30s\n`,
  );
  const emu = await KernelEmulator.open();
  const agent = await startAgent(emu, { args: ["--config", config] });
  const control = new ControlClient(agent.socket);
  try {
    const line = await agent.waitForLog(/Plugin unhealthy/);
    assert.match(line, /kind=ca name=fake message="upstream sealed"/);
    const metrics = await (await control.get("/metrics")).text();
    assert.ok(metrics.includes('camblet_plugin_up{kind="ca",name="fake"} 0'), metrics);
    const s = await control.json<AgentStatus>("/v1/status");
    assert.equal(s.plugins["ca/fake"], 0);
    assert.equal(s.pluginHealth?.["ca/fake"]?.message, "upstream sealed");
    const cli = await runCli(["status", "--control-socket", agent.socket]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /plugins +ca\/fake DOWN \(upstream sealed\)/);
  } finally {
    control.close();
    await agent.stop();
    await emu.close();
    await Deno.remove(dir, { recursive: true });
  }
});
