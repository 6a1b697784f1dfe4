/**
 * Service hostnames are looked up again every `agent.serviceResolveInterval`, and a changed
 * address reaches the kernel as a new `load_sd_info` (and nothing else), with no file changed.
 *
 * The agent resolves through /etc/hosts first. It runs in its own mount namespace (`unshare
 * --mount`) with a temporary hosts file bind-mounted over /etc/hosts, so the test can change what
 * a name resolves to without touching the machine's. Needs root (skipped otherwise).
 */
import assert from "node:assert/strict";
import { skip } from "../_skip.ts";
import { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";
import { ControlClient } from "../../agent/control/client.ts";
import type { AgentStatus } from "../../agent/daemon/status.ts";
import { startAgent } from "../fakes/agent_process.ts";
import { until } from "../fakes/until.ts";

const canUnshare = (() => {
  try {
    return new Deno.Command("unshare", { args: ["--mount", "true"], stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "a service hostname that resolves to a new address is pushed without a file change",
  ignore: skip(!canUnshare && "needs root and unshare (a mount namespace)"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "camblet-resolve-" });
    const hosts = `${dir}/hosts`;
    // Written in place (same inode) from now on: a bind mount follows the inode, not the name.
    await Deno.writeTextFile(hosts, "127.0.0.1 localhost\n10.20.0.1 api.internal\n");
    const emu = await KernelEmulator.open();
    const agent = await startAgent(emu, {
      env: { AGENT_SERVICERESOLVEINTERVAL: "300ms" },
      wrap: [
        "unshare",
        "--mount",
        "--",
        "/bin/sh",
        "-c",
        'mount --bind "$0" /etc/hosts && exec "$@"',
        hosts,
      ],
    });
    const control = new ControlClient(agent.socket);
    const status = () => control.json<AgentStatus>("/v1/status");
    const sdKeys = () => Object.keys(emu.state.sdInfo).sort();
    try {
      // A service file naming the host by its name: resolved once when the file is read.
      await Deno.writeTextFile(
        `${agent.dir}/services/api.yaml`,
        "- addresses: [{address: api.internal, port: 443}]\n  labels: {app:label: api}\n",
      );
      await emu.waitFor(
        () => sdKeys().includes("10.20.0.1:443"),
        "the service at its first address",
      );

      // Re-resolution that finds the same address pushes nothing.
      const before = emu.received.length;
      const firstResolve = Date.now();
      await until(async () => {
        const r = (await status()).policy.lastReload;
        return r?.reason === "resolve" && Date.parse(r.at) > firstResolve;
      }, "a periodic re-resolution");
      assert.equal((await status()).policy.lastReload?.outcome, "unchanged");
      assert.equal(emu.received.length, before, "an unchanged address is not pushed");

      await Deno.writeTextFile(hosts, "127.0.0.1 localhost\n10.20.0.2 api.internal\n");
      await emu.waitFor(
        () => sdKeys().includes("10.20.0.2:443"),
        "the new address, from the periodic re-resolution",
      );
      assert.deepEqual(sdKeys(), ["10.20.0.2:443", "127.0.0.1:8000"]);
      assert.deepEqual(emu.state.sdInfo["10.20.0.2:443"], { labels: ["app:label=api"] });
      assert.deepEqual(emu.received.slice(before).map((m) => m.command), ["load_sd_info"]);
      // The resolution that pushed, as the agent recorded it: the next periodic one (300 ms later)
      // finds nothing new and may already hold status's single "last reload" slot.
      await agent.waitForLog(/"Reloaded" reason=resolve pushed=load_sd_info revision=\d+/);
    } finally {
      control.close();
      await agent.stop("SIGTERM");
      await emu.close();
      await Deno.remove(dir, { recursive: true });
    }
    emu.assertHealthy();
  },
});
