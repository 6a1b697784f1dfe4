import assert from "node:assert/strict";
import { BUNDLE_PASS, REPO_ROOT, spawnLogged } from "./_run.ts";
import { readmeBlocks } from "./_readme.ts";
import { skip } from "../_skip.ts";

/** The README's first `task start` command, e.g. `sudo npx -y deno@… task start …`. */
async function readmeStartArgs(): Promise<string[]> {
  const readme = await Deno.readTextFile(`${REPO_ROOT}README.md`);
  const block = readmeBlocks(readme).find((b) => / task start\b/.test(b.code))?.code ?? "";
  const line = block.split("\n").find((l) => / task start\b/.test(l)) ?? "";
  const first = line.replace(/#.*/, "").trim().split(/\s+/);
  const task = first.indexOf("task");
  assert.ok(task > 0 && first[task + 1] === "start", `README opens with: ${first.join(" ")}`);
  return first.slice(task); // what follows `deno`
}

const canRun = Deno.uid() === 0 && new Deno.Command("unshare", { args: ["--help"] }).outputSync()
  .success;

// The README's first command, as written, starts the daemon and stops cleanly. It runs in a
// network namespace of its own, with the agent's files redirected through AGENT_* variables.
Deno.test({
  name: "README: `task start` runs the agent (auto picks the proxy without a module)",
  ignore: skip(
    BUNDLE_PASS ?? (!canRun && "needs root and unshare (the agent runs in a network namespace)"),
  ),
  async fn() {
    const args = await readmeStartArgs();
    const dir = await Deno.makeTempDir({ prefix: "camblet-readme-" });
    try {
      const env: Record<string, string> = {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: Deno.env.get("HOME") ?? "/root",
        NO_COLOR: "1",
        AGENT_CAPEMPATH: `${dir}/ca.pem`,
        AGENT_POLICIESPATH: `${dir}/policies`,
        AGENT_CONTROLSOCKET: `${dir}/run/agent.sock`,
        AGENT_KERNELMODULEDEVICE: `${dir}/no-camblet-device`,
      };
      for (const k of ["DENO_DIR", "CAMBLET_PEERS_DIR"]) {
        const v = Deno.env.get(k);
        if (v) env[k] = v;
      }
      await Deno.mkdir(`${dir}/policies`);
      const agent = spawnLogged("unshare", {
        args: ["--net", "--", Deno.execPath(), ...args],
        cwd: REPO_ROOT,
        env,
        clearEnv: true,
      });
      const ready = await agent.waitFor(/"Agent ready"/, 60_000);
      agent.child.kill("SIGTERM");
      const status = await agent.child.status;
      await agent.pumps;
      const log = agent.log();
      assert.ok(ready, `no "Agent ready" within 60 s:\n${log}`);
      assert.equal(status.code, 0, log);
      assert.match(log, /trustDomain=acme\.corp/);
      assert.match(log, /"Data plane" kind=proxy reason="auto: .* does not exist/);
      // The services path is left at its default: where it is missing, one warning says so.
      const warned = log.match(/services path does not exist/g)?.length ?? 0;
      const missing = await Deno.stat("/etc/camblet/services").then(() => false, () => true);
      assert.equal(warned, missing ? 1 : 0, log);
      const ca = await Deno.stat(`${dir}/ca.pem`);
      assert.equal(ca.mode! & 0o777, 0o600, "the CA key file is 0600");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
