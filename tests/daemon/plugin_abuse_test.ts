/**
 * The real agent on the kernel emulator with an external CA that abuses its stdio channel when
 * asked to sign (tests/fakes/ca_abusive_plugin.ts): a huge answer, a line without end, a plugin
 * that forks a child and exits. In each: every kernel `csr_sign` sent during the abuse is answered
 * in time with a refusal certificate, `status` keeps answering, SIGTERM ends the agent within 5 s,
 * and no plugin process or child of one is left. A control run with a well-behaved plugin proves
 * the requests reach the CA.
 *
 * `PLUGIN_ABUSE_ROOT=<checkout>` runs the agent from another checkout (before/after RSS numbers,
 * printed as `plugin abuse: …`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { KernelEmulator, type RequestResult } from "../../driver/emulator/kernel_emulator.ts";
import { syntheticTask } from "../../driver/emulator/tasks.ts";
import { ControlClient } from "../../agent/control/client.ts";
import { REPO_ROOT } from "../cli/_run.ts";
import { startAgent } from "../fakes/agent_process.ts";

const PLUGIN = `${REPO_ROOT}tests/fakes/ca_abusive_plugin.ts`;
const OTHER_ROOT = Deno.env.get("PLUGIN_ABUSE_ROOT");
const WEB = "spiffe://acme.test/web";

type Mode =
  | "ok"
  | "huge-answer"
  | "deep-answer"
  | "endless-line"
  | "fork-exit"
  | "garbage-flood"
  | "stderr-flood";

interface AbuseReport {
  answers: RequestResult[];
  /** Each status call: ms, or -1 when it failed or took over 2 s. */
  statusMs: number[];
  rssBeforeMiB: number;
  rssPeakMiB: number;
  stopMs: number;
  exitCode: number;
  /** `pid what` lines of plugin processes and children still alive after the agent exited. */
  leftovers: string[];
  pids: string[];
  log: string;
}

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Alive and not a zombie (an orphan's zombie waits for a PID 1 that may never reap it). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

async function abuse(mode: Mode, requests: number): Promise<AbuseReport> {
  const dir = await Deno.makeTempDir({ prefix: "plugin-abuse-" });
  const pidsFile = join(dir, "pids");
  await Deno.writeTextFile(pidsFile, "");
  const config = join(dir, "config.yaml");
  await Deno.writeTextFile(
    config,
    `agent:\n  ca: abusive\nplugins:\n  external:\n    - kind: ca\n      name: abusive\n` +
      `      path: ${PLUGIN}\n      args: ["--mode=${mode}", "--pids=${pidsFile}"]\n` +
      `      startTimeout: 30s\n      restartBackoff: 100ms\n      restartBackoffMax: 400ms\n`,
  );
  const emu = await KernelEmulator.open();
  const agent = await startAgent(emu, {
    args: ["--config", config],
    ...(OTHER_ROOT ? { root: OTHER_ROOT } : {}),
  });
  const control = new ControlClient(agent.socket);
  const pid = agent.child.pid;
  const rssBeforeMiB = rssMiB(pid);
  let rssPeakMiB = rssBeforeMiB;
  const sampler = setInterval(() => rssPeakMiB = Math.max(rssPeakMiB, rssMiB(pid)), 50);
  const statusMs: number[] = [];
  let abusing = true;
  const prober = (async () => {
    while (abusing) {
      const t0 = performance.now();
      try {
        const r = await control.get("/v1/status", AbortSignal.timeout(2000));
        await r.body?.cancel();
        statusMs.push(r.ok ? performance.now() - t0 : -1);
      } catch {
        statusMs.push(-1);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const answers: RequestResult[] = [];
  let stopMs = Infinity;
  let exitCode = -1;
  try {
    for (let i = 0; i < requests; i++) {
      answers.push(await emu.csrSign(WEB, { ttl: "3600s", task: syntheticTask(i) }));
      await new Promise((r) => setTimeout(r, 150));
    }
  } finally {
    abusing = false;
    await prober;
    control.close();
    clearInterval(sampler);
    const t0 = performance.now();
    agent.kill("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ended = await Promise.race([
      agent.status.then(() => true),
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), 10_000)),
    ]);
    clearTimeout(timer);
    stopMs = ended ? performance.now() - t0 : Infinity;
    exitCode = await agent.stop("SIGKILL");
    await emu.close();
  }
  // A killed group is gone at once; give an orphan's exit a moment before calling it left behind.
  await new Promise((r) => setTimeout(r, 200));
  const pids = (await Deno.readTextFile(pidsFile)).trim().split("\n").filter((l) => l !== "");
  const leftovers = pids.filter((l) => alive(Number(l.split(" ")[0])));
  for (const l of leftovers) {
    try {
      Deno.kill(Number(l.split(" ")[0]), "SIGKILL");
    } catch { /* gone */ }
  }
  await Deno.remove(dir, { recursive: true });
  const report = {
    answers,
    statusMs,
    rssBeforeMiB,
    rssPeakMiB,
    stopMs,
    exitCode,
    leftovers,
    pids,
    log: agent.log(),
  };
  const ms = (x: number) => x < 0 ? "failed" : `${Math.round(x)}`;
  console.log(
    `plugin abuse: mode=${mode}${OTHER_ROOT ? ` root=${OTHER_ROOT}` : ""} ` +
      `outcomes=${answers.map((a) => `${a.outcome}/${Math.round(a.latencyMs)}ms`).join(",")} ` +
      `status_ms=${statusMs.map(ms).join(",")} rss_before=${rssBeforeMiB.toFixed(0)}MiB ` +
      `rss_peak=${rssPeakMiB.toFixed(0)}MiB sigterm_exit_ms=${
        Number.isFinite(stopMs) ? Math.round(stopMs) : "none within 10000"
      } exit=${exitCode} plugin_processes=${pids.length} left=${leftovers.length}`,
  );
  return report;
}

/** The kernel, status and SIGTERM were served; nothing is left. */
function assertServed(r: AbuseReport): void {
  assert.ok(r.answers.length > 0);
  for (const a of r.answers) {
    assert.equal(a.outcome, "refused", `csr_sign ${a.id}: ${a.outcome} ${a.error ?? ""}`);
    assert.ok(a.latencyMs < 1000, `csr_sign answered in ${a.latencyMs} ms`);
    assert.deepEqual(a.check?.problems ?? [], [], "a well-formed refusal certificate");
  }
  assert.ok(r.statusMs.length >= 3, `status was asked ${r.statusMs.length} times`);
  assert.ok(r.statusMs.every((ms) => ms >= 0), `status answers (ms): ${r.statusMs.join(", ")}`);
  assert.ok(r.stopMs < 5000, `SIGTERM ended the agent in ${r.stopMs} ms`);
  assert.equal(r.exitCode, 0, "a clean exit after SIGTERM");
  assert.deepEqual(r.leftovers, [], "no plugin process or child is left");
}

/** Served, and the plugin was killed or died and was restarted. */
function assertSurvived(r: AbuseReport): void {
  assertServed(r);
  assert.ok(r.pids.length >= 2, `the plugin was restarted (${r.pids.join("; ")})`);
  assert.match(r.log, /Plugin died; restarting it/);
}

Deno.test({
  name: "external CA abuse: the agent keeps answering the kernel, status and SIGTERM",
  fn: async (t) => {
    await t.step("control: a well-behaved plugin issues", async () => {
      const r = await abuse("ok", 2);
      assert.deepEqual(r.answers.map((a) => a.outcome), ["issued", "issued"]);
      assert.ok(r.stopMs < 5000, `SIGTERM ended the agent in ${r.stopMs} ms`);
      assert.deepEqual(r.leftovers, []);
    });

    await t.step("a huge answer: killed at 1 MiB, restarted", async () => {
      const r = await abuse("huge-answer", 6);
      assertSurvived(r);
      assert.match(r.log, /Plugin wrote a message over the limit on stdout; killing it/);
      assert.match(r.log, /limitBytes=1048576/);
    });

    await t.step("answers nested half a million deep: killed unparsed, restarted", async () => {
      const r = await abuse("deep-answer", 6);
      assertSurvived(r);
      assert.match(r.log, /Plugin wrote a message nested too deep on stdout; killing it/);
    });

    await t.step("a line without end: killed at 1 MiB, restarted", async () => {
      const r = await abuse("endless-line", 6);
      assertSurvived(r);
      assert.match(r.log, /Plugin wrote a message over the limit on stdout; killing it/);
    });

    await t.step("a plugin that forks a child and exits: the child goes with it", async () => {
      const r = await abuse("fork-exit", 6);
      assertSurvived(r);
      assert.ok(r.pids.some((l) => l.endsWith(" child")), "the plugin started children");
    });

    await t.step("a flood of lines that are not JSON on stdout: killed, restarted", async () => {
      const r = await abuse("garbage-flood", 6);
      assertSurvived(r);
      assert.match(r.log, /Plugin floods stdout with lines that are not JSON-RPC; killing it/);
      const logged = r.log.split("\n").filter((l) => /not JSON-RPC on stdout/.test(l)).length;
      assert.ok(logged <= 5 * 10, `${logged} stdout noise lines logged`);
    });

    await t.step("a flood on stderr: logged within a budget, the agent stays served", async () => {
      const r = await abuse("stderr-flood", 6);
      assertServed(r);
      const logged = r.log.split("\n").filter((l) => /stream=stderr/.test(l)).length;
      assert.ok(logged <= 50 * 10, `${logged} stderr lines logged`);
      assert.match(r.log, /Plugin stderr lines not logged/);
    });
  },
});
