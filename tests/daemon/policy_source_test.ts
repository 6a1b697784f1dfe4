/**
 * The agent with a `git` policy source declared in `plugins.policySource`: the repository's
 * policies reach the emulated kernel next to the `--policies-path` ones, and a new commit is
 * pushed as `load_policies` only.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";
import { ControlClient } from "../../agent/control/client.ts";
import type { AgentStatus } from "../../agent/daemon/status.ts";
import { runCli } from "../cli/_run.ts";
import { startAgent } from "../fakes/agent_process.ts";
import { GitRemote } from "../sources/_git_repo.ts";

const policy = (id: string) =>
  `- selectors: [{process:name: ${id}}]\n  certificate: {workloadID: ${id}}\n`;

Deno.test("a git policy source reaches the kernel and follows new commits", async (t) => {
  const remote = await GitRemote.create();
  const sha = await remote.commit({ "policies/fleet.yaml": policy("fleet") }, "fleet");
  const config = join(remote.root, "config.yaml");
  await Deno.writeTextFile(
    config,
    `plugins:\n  policySource:\n    - type: git\n      name: fleet\n      url: ${remote.url}\n` +
      `      cacheDir: ${remote.root}/cache\n      pollInterval: 300ms\n`,
  );
  const emu = await KernelEmulator.open();
  const agent = await startAgent(emu, { args: ["--config", config] });
  const control = new ControlClient(agent.socket);
  const ids = () => emu.state.policies.policies.map((p) => p.certificate.workloadID).sort();
  try {
    await t.step("startup pushes the merged set", async () => {
      assert.deepEqual(ids(), ["curl", "fleet", "web"], agent.log());
      const s = await control.json<AgentStatus>("/v1/status");
      assert.deepEqual(s.sources.sources.map((x) => [x.id, x.state]), [
        ["git(fleet)", "ok"],
        ["file(paths)", "ok"],
      ]);
      assert.equal(s.sources.sources[0]!.revision, sha);
      assert.match(s.sources.sources[1]!.revision!, /^sha256:/);
      const metrics = await (await control.get("/metrics")).text();
      assert.match(metrics, /git\(fleet\)/);
      const cli = await runCli(["sources", "--config", config, "--control-socket", agent.socket]);
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, new RegExp(`git\\(fleet\\)\\s+ok\\s+${sha.slice(0, 12)}`));
    });

    await t.step("a new commit pushes only load_policies", async () => {
      const before = emu.received.length;
      await remote.commit({ "policies/api.yaml": policy("api") }, "api");
      await emu.waitFor(() => ids().includes("api"), "the new commit's policy");
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(emu.received.slice(before).map((m) => m.command), ["load_policies"]);
      assert.deepEqual(ids(), ["api", "curl", "fleet", "web"]);
    });
  } finally {
    control.close();
    await agent.stop("SIGTERM");
    await emu.close();
    await remote.remove();
  }
  emu.assertHealthy();
});
