/**
 * The deb under a real systemd: a fresh Debian root booted with systemd-nspawn (its own network,
 * only the capabilities the unit asks for, the `bpf` syscall allowed), the deb installed inside with
 * dpkg as a user would, then `systemctl start` (Type=notify: returns at READY=1), reload (SIGHUP),
 * journald priorities, `systemd-analyze security` and stop. Needs root and systemd-nspawn; outside
 * CI a machine without them skips (CI=true makes a missing tool a failure).
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildPackages } from "../../packaging/build.ts";
import type { Arch } from "../../packaging/deno_runtime.ts";
import { freshRoot } from "./debian_root.ts";
import { ROOT } from "../../packaging/bundle.ts";

const ARCH: Arch = Deno.build.arch === "aarch64" ? "aarch64" : "x86_64";

async function has(tool: string): Promise<boolean> {
  const r = await new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "null" })
    .output();
  return r.success;
}

const missing = [];
for (const t of ["systemd-nspawn", "nsenter", "debootstrap"]) if (!(await has(t))) missing.push(t);
const skip = (Deno.uid() !== 0 || missing.length > 0) && Deno.env.get("CI") !== "true";
if (skip) console.error(`systemd_test: skipped: not root or missing ${missing.join(", ")}`);

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[]): Promise<Out> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

// The container's init (systemd as PID 1 of its namespace): a child of systemd-nspawn once the
// outer helper process is gone.
async function leaderOf(nspawnPid: number, ms: number): Promise<number> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      for await (const t of Deno.readDir(`/proc/${nspawnPid}/task`)) {
        const kids = (await Deno.readTextFile(`/proc/${nspawnPid}/task/${t.name}/children`)).trim();
        for (const kid of kids.split(" ").filter((k) => k !== "")) {
          if ((await Deno.readTextFile(`/proc/${kid}/comm`)).trim() === "systemd") {
            return Number(kid);
          }
        }
      }
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Cannot find the container's systemd under systemd-nspawn (pid ${nspawnPid})`);
}

Deno.test({
  name: "systemd: the deb's unit starts (Type=notify), reloads, logs with priorities, stops",
  ignore: skip,
  sanitizeResources: false,
  fn: async (t) => {
    const work = await Deno.makeTempDir({ prefix: "camblet-systemd-test-" });
    const root = await freshRoot();
    let nspawn: Deno.ChildProcess | undefined;
    try {
      const [deb] = await buildPackages({
        arches: [ARCH],
        formats: ["deb"],
        outDir: join(work, "out"),
        stageDir: join(work, "stage"),
        log: () => {},
      });
      await Deno.copyFile(
        deb!.path,
        join(root, "root/camblet-agent.deb"), /* nspawn mounts a tmpfs on /tmp */
      );
      nspawn = new Deno.Command("systemd-nspawn", {
        args: [
          "-D",
          root,
          "--boot",
          "--register=no",
          "--keep-unit",
          "--quiet",
          "--console=passive",
          "--private-network",
          "--system-call-filter=bpf",
          "--capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN,CAP_SYS_PTRACE",
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const leader = await leaderOf(nspawn.pid, 20_000);
      const inside = (...args: string[]) =>
        run("nsenter", [
          "-t",
          String(leader),
          "-a",
          "env",
          "-i",
          "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
          ...args,
        ]);
      const ok = async (...args: string[]) => {
        const r = await inside(...args);
        assert.equal(r.code, 0, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
        return r.stdout;
      };
      /** The unit's journal, with `args` (priority, format, line count). */
      const journal = (...args: string[]) =>
        ok("journalctl", "-u", "camblet-agent", "--no-pager", ...args);
      // Booted (degraded: some units of a bare container fail; fine). Its bus socket appears a
      // moment after PID 1 starts.
      let booted: Out = { code: 1, stdout: "", stderr: "" };
      for (const end = Date.now() + 60_000; Date.now() < end;) {
        booted = await inside("timeout", "60", "systemctl", "is-system-running", "--wait");
        if (/running|degraded/.test(booted.stdout)) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.match(booted.stdout, /running|degraded/, booted.stdout + booted.stderr);

      let readyMs = 0;
      await t.step("dpkg -i, then systemctl start returns once the agent is ready", async () => {
        const t0 = performance.now();
        await ok("dpkg", "-i", "/root/camblet-agent.deb");
        const installMs = performance.now() - t0;
        assert.equal(
          (await inside("systemctl", "is-enabled", "camblet-agent")).stdout.trim(),
          "enabled",
        );
        assert.equal(
          (await inside("systemctl", "is-active", "camblet-agent")).stdout.trim(),
          "inactive",
        );
        // No /dev/camblet here: the proxy data plane.
        const config = join(root, "etc/camblet/config.yaml");
        await Deno.writeTextFile(
          config,
          (await Deno.readTextFile(config)).replace("driver: auto", "driver: proxy"),
        );
        const t1 = performance.now();
        await ok("systemctl", "start", "camblet-agent");
        readyMs = performance.now() - t1;
        const show = await ok(
          "systemctl",
          "show",
          "camblet-agent",
          "-p",
          "ActiveState",
          "-p",
          "StatusText",
          "-p",
          "Type",
        );
        assert.match(show, /^ActiveState=active$/m);
        assert.match(show, /^StatusText=Agent ready \(proxy data plane\)$/m);
        assert.match(show, /^Type=notify$/m);
        console.error(
          `systemd_test: dpkg -i ${installMs.toFixed(0)} ms, systemctl start (to READY=1) ${
            readyMs.toFixed(0)
          } ms, ` +
            `dpkg -i to ready ${(performance.now() - t0).toFixed(0)} ms`,
        );
        const status = await ok("camblet-agent", "status");
        assert.match(status, /: ready/);
      });

      await t.step("reload sends SIGHUP; a bad policy is logged at priority err", async () => {
        await Deno.writeTextFile(
          join(root, "etc/camblet/policies/bad.yaml"),
          "- selectors:\n    - process:name: x\n  bogus: 1\n",
        );
        await ok("systemctl", "reload", "camblet-agent");
        // The file source may see the new file before the SIGHUP does: either rejection counts.
        const deadline = Date.now() + 30_000;
        let errors = "";
        while (Date.now() < deadline && !/bad\.yaml:3: item 0: bogus/.test(errors)) {
          errors = await journal("-p", "err", "-o", "cat");
          await new Promise((r) => setTimeout(r, 200));
        }
        assert.match(errors, /bad\.yaml:3: item 0: bogus: unknown field/);
        assert.match(errors, /the last good policies and services stay in force|Rejected/);
        const info = await journal("-p", "info", "-o", "cat");
        assert.match(info, /SIGHUP: reloading configuration and every source/);
        const warnings = await journal("-p", "warning", "-o", "cat");
        assert.doesNotMatch(warnings, /"Agent ready"/, "info lines must not be logged as warnings");
        const json = await journal("-o", "json", "-n", "50");
        assert.match(json, /"SYSLOG_IDENTIFIER":"camblet-agent"/);
        assert.equal(
          (await inside("systemctl", "is-active", "camblet-agent")).stdout.trim(),
          "active",
        );
      });
      // The next steps restart the agent, which refuses to start on a bad policy.
      await Deno.remove(join(root, "etc/camblet/policies/bad.yaml")).catch(() => {});

      await t.step("a git policy source works inside the unit's sandbox", async () => {
        // A repository in the root, read over file:// by the agent's git (run by the agent).
        const repo = "/srv/policies";
        await Deno.mkdir(join(root, repo, "policies"), { recursive: true });
        await Deno.copyFile(
          join(ROOT, "policies/examples/quickstart/policies/web-curl.yaml"),
          join(root, repo, "policies/web-curl.yaml"),
        );
        const git = (...args: string[]) =>
          ok("git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@t", ...args);
        await git("init", "-q", "-b", "main");
        await git("add", ".");
        await git("commit", "-q", "-m", "policies");
        const config = join(root, "etc/camblet/config.yaml");
        await Deno.writeTextFile(
          config,
          (await Deno.readTextFile(config)) +
            `plugins:\n  policySource:\n    - type: git\n      name: fleet\n      url: file://${repo}\n      ref: main\n`,
        );
        await ok("systemctl", "restart", "camblet-agent"); // a new source list takes a restart
        const sources = await ok("camblet-agent", "sources", "--output", "json");
        assert.match(sources, /git\(fleet\)/);
        const log = await journal("-o", "cat", "-n", "40");
        assert.match(
          log,
          /"Policy source revision accepted" source=git\(fleet\) revision=[0-9a-f]{40} policies=2/,
        );
        assert.equal(
          (await inside("systemctl", "is-active", "camblet-agent")).stdout.trim(),
          "active",
        );
      });

      await t.step("systemd-analyze security of the running unit", async () => {
        const r = await inside(
          "systemd-analyze",
          "security",
          "--no-pager",
          "camblet-agent.service",
        );
        const score = Number(
          /Overall exposure level for camblet-agent\.service: ([\d.]+)/.exec(r.stdout)?.[1],
        );
        console.error(`systemd_test: systemd-analyze security exposure ${score}`);
        assert.ok(score <= 3.0, r.stdout + r.stderr);
      });

      await t.step("stop ends the agent with SIGTERM and a clean exit", async () => {
        await ok("systemctl", "stop", "camblet-agent");
        const show = await ok(
          "systemctl",
          "show",
          "camblet-agent",
          "-p",
          "ActiveState",
          "-p",
          "ExecMainStatus",
          "-p",
          "NRestarts",
        );
        assert.match(show, /^ActiveState=inactive$/m);
        assert.match(show, /^ExecMainStatus=0$/m);
        assert.match(show, /^NRestarts=0$/m);
        const log = await journal("-o", "cat", "-n", "20");
        assert.match(log, /"Stopping" reason=SIGTERM/);
      });
      await inside("systemctl", "poweroff");
    } finally {
      if (nspawn) {
        const timer = setTimeout(() => nspawn!.kill("SIGKILL"), 20_000);
        await nspawn.output();
        clearTimeout(timer);
      }
      await Deno.remove(root, { recursive: true }).catch(() => {});
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
