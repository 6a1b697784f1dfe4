/**
 * `npx -y deno@… task start`: npm passes SIGTERM to the `sh -c` it runs `deno task` under, which
 * dies without passing it on. The agent must stop anyway (it watches its launchers).
 */
import assert from "node:assert/strict";
import { BUNDLE_PASS, REPO_ROOT, spawnLogged, works } from "./_run.ts";
import { skip } from "../_skip.ts";

const DENO = "deno@2.9.6";

const why = Deno.uid() !== 0 || !works("unshare", ["--net", "true"])
  ? "needs root and unshare (the agent runs in a network namespace)"
  : !works("timeout", ["60", "npx", "-y", DENO, "--version"], { npm_config_offline: "true" })
  ? `needs npx with ${DENO} in its cache (run \`npx -y ${DENO} --version\` once)`
  : undefined;

function children(pid: number): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) {
        out.push(Number(e.name));
      }
    } catch { /* exited */ }
  }
  return out;
}

function descendants(pid: number): number[] {
  const kids = children(pid);
  return [...kids, ...kids.flatMap(descendants)];
}

function alive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

Deno.test({
  name: "SIGTERM to `npx … task start` stops the agent (no orphan)",
  ignore: skip(BUNDLE_PASS ?? why),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "camblet-launcher-" });
    await Deno.mkdir(`${dir}/policies`);
    await Deno.mkdir(`${dir}/services`);
    const env: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/root",
      NO_COLOR: "1",
      npm_config_offline: "true",
      AGENT_CAPEMPATH: `${dir}/ca.pem`,
      AGENT_POLICIESPATH: `${dir}/policies`,
      AGENT_SERVICESPATH: `${dir}/services`,
      AGENT_CONTROLSOCKET: `${dir}/agent.sock`,
      AGENT_KERNELMODULEDEVICE: `${dir}/no-camblet-device`,
    };
    for (const k of ["DENO_DIR", "npm_config_cache"]) {
      const v = Deno.env.get(k);
      if (v) env[k] = v;
    }
    // unshare execs npx: the child's pid is the wrapper's.
    const launched = spawnLogged("unshare", {
      args: ["--net", "--", "npx", "-y", DENO, "task", "start", "--trust-domain", "acme.test"],
      cwd: REPO_ROOT,
      env,
      clearEnv: true,
    });
    const { child: wrapper, pumps } = launched;
    let agents: number[] = [];
    try {
      const ready = await launched.waitFor(/"Agent ready"/, 90_000);
      assert.ok(ready, `no "Agent ready" within 90 s:\n${launched.log()}`);
      agents = descendants(wrapper.pid).filter((pid) => {
        try {
          return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes("main.ts");
        } catch {
          return false;
        }
      });
      assert.equal(agents.length, 1, `one agent process under the wrapper: ${agents}`);
      wrapper.kill("SIGTERM");
      await wrapper.status;
      const gone = Date.now() + 15_000;
      while (alive(agents[0]!) && Date.now() < gone) await new Promise((r) => setTimeout(r, 100));
      assert.ok(
        !alive(agents[0]!),
        `the agent (pid ${agents[0]}) outlived its launcher:\n${launched.log()}`,
      );
      await pumps;
      assert.match(launched.log(), /"Launcher exited; stopping"/);
      assert.match(launched.log(), /"Stopping" reason="launcher pid \d+ exited"/);
      await assert.rejects(Deno.stat(`${dir}/agent.sock`), Deno.errors.NotFound);
    } finally {
      try {
        wrapper.kill("SIGKILL");
      } catch { /* exited */ }
      for (const pid of agents) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* exited */ }
      }
      await wrapper.status;
      await pumps.catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});
