/**
 * Runs INSIDE the qemu guest, started by daemon_lifecycle_test.ts: the real agent (`camblet-agent
 * run` on the kernel emulator) with a runtime policy for a test systemd-like cgroup. Checks the
 * `events` stream and `status` CLIs against it, then what stopping the agent does: detached by
 * default, still enforced with fail-closed pinning, taken over by the next agent, lifted by
 * removing the pin directory. Writes its checks to DIR/results.json.
 *
 * Usage (guest): deno run -A tests/guard/guest_daemon.ts DIR
 */
import { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";
import { agentEntry, REPO_ROOT } from "../cli/_run.ts";
import { type Check, Runner, sh } from "./guest_lib.ts";
import { ControlClient } from "../../agent/control/client.ts";
import type { AgentStatus } from "../../agent/daemon/status.ts";

const DIR = Deno.args[0]!;
const checks: Check[] = [];
const check = (name: string, ok: boolean, detail: unknown = "") =>
  checks.push({ name, ok, detail: typeof detail === "string" ? detail : JSON.stringify(detail) });
const PIN = "/sys/fs/bpf/camblet-guard";

await sh(
  "mount -t securityfs none /sys/kernel/security 2>/dev/null; " +
    "mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup; " +
    "mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; " +
    "mkdir -p /sys/fs/cgroup/guardd.service",
);

const workload = await Runner.start("/usr/bin/bash");
await workload.run("echo $$ > /sys/fs/cgroup/guardd.service/cgroup.procs");
const execSh = async () => (await workload.run("/bin/sh -c true")).code;

/** A running agent (a subprocess of the bundle or main.ts) and its log. */
interface Agent {
  socket: string;
  log(): string;
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts the agent on `emu` with the guard policy. Like tests/fakes/agent_process.ts, with
 * timeouts for a guest that runs 15–35× slower.
 */
async function agent(emu: KernelEmulator, env: Record<string, string>): Promise<Agent> {
  const dir = await Deno.makeTempDir({ prefix: "camblet-guard-agent-" });
  await Deno.mkdir(`${dir}/policies`);
  await Deno.mkdir(`${dir}/services`);
  await Deno.copyFile(`${DIR}/ca.pem`, `${dir}/ca.pem`);
  await Deno.chmod(`${dir}/ca.pem`, 0o600);
  await Deno.writeTextFile(
    `${dir}/policies/guard.yaml`,
    "- selectors: [{systemd:unit: guardd.service}]\n" +
      '  certificate: {workloadID: "guarded/[systemd:unit]"}\n' +
      "  runtime: {profiles: [baseline], exec: {deny: [/bin/sh]}}\n",
  );
  const socket = `${dir}/run/agent.sock`;
  const child = cli([
    "run",
    "--kernel-module-device",
    emu.path,
    "--control-socket",
    socket,
    "--policies-path",
    `${dir}/policies`,
    "--services-path",
    `${dir}/services`,
    "--ca-pem-path",
    `${dir}/ca.pem`,
    "--trust-domain",
    "acme.test",
  ], { ...env, NO_COLOR: "1" }).spawn();
  let text = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) text += chunk;
  };
  const done = Promise.all([pump(child.stdout), pump(child.stderr)]).then(() => child.status);
  let exited = false;
  done.then(() => exited = true);
  const waitForLog = async (re: RegExp, timeoutMs = 150_000) => {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const m = text.split("\n").find((l) => re.test(l));
      if (m !== undefined) return m;
      if (exited || Date.now() > end) throw new Error(`no log line ${re}:\n${text.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const a: Agent = {
    socket,
    log: () => text,
    waitForLog,
    stop: async () => {
      if (!exited) child.kill("SIGTERM");
      await done;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await waitForLog(/Agent ready/);
  } catch (e) {
    if (!exited) child.kill("SIGKILL");
    await done;
    throw e;
  }
  return a;
}

/** Polls the agent's status until `ok` (60 s). */
async function until(a: Agent, ok: (s: AgentStatus) => boolean): Promise<void> {
  const control = new ControlClient(a.socket);
  try {
    for (let i = 0; i < 240; i++) {
      if (ok(await control.json<AgentStatus>("/v1/status"))) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`the agent's status never satisfied ${ok}`);
  } finally {
    control.close();
  }
}

/** Waits until the agent's first sweep has keyed the workload's cgroup. */
const keyed = (a: Agent) =>
  until(a, (s) => s.runtimeGuard?.state === "running" && s.runtimeGuard.confined.cgroups === 1);

function cli(args: string[], env: Record<string, string> = {}): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `--config=${REPO_ROOT}deno.json`, agentEntry(), ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  });
}

const emu = await KernelEmulator.open();
try {
  let a = await agent(emu, {});
  await a.waitForLog(/Runtime guard running/, 60_000);
  await keyed(a);
  const events = cli(["events", "--output", "json", "--control-socket", a.socket]).spawn();
  await until(
    a,
    (s) => s.runtimeGuard?.state === "running" && s.runtimeGuard.events.subscribers === 1,
  );
  const code = await execSh();
  check("with the agent running, the workload may not exec /bin/sh", code === 126, code);
  const reader = events.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const first = await Promise.race([
    reader.read().then((r) => r.value ?? ""),
    new Promise<string>((r) => setTimeout(() => r("timeout"), 20_000)),
  ]);
  let ev: Record<string, unknown> = {};
  try {
    ev = JSON.parse(first.split("\n")[0]!);
  } catch { /* checked below */ }
  check(
    "camblet-agent events streams the denial with the workload's labels and SPIFFE ID",
    ev["outcome"] === "denied" && ev["spiffeId"] === "spiffe://acme.test/guarded/guardd.service" &&
      (ev["labels"] as string[] | undefined)?.includes("systemd:unit=guardd.service") === true,
    first,
  );
  events.kill();
  await events.output().catch(() => {});
  const st = await cli(["status", "--control-socket", a.socket]).output();
  const text = new TextDecoder().decode(st.stdout);
  check(
    "camblet-agent status shows the guard: programs, canary, confined cgroup, denials",
    /runtime guard\s+20 BPF LSM programs attached; 1 rule set \(1 enforce, 0 audit\); canary ok/
      .test(text) && /confined\s+1 cgroup/.test(text) && /guard events\s+denied [1-9]/.test(text),
    text,
  );
  await a.stop();
  check(
    "stopping the agent logs that workloads are no longer confined",
    /workloads are no longer confined/.test(a.log()),
    a.log().slice(-600),
  );
  check("after the agent stops (default), the workload may exec /bin/sh", await execSh() === 0);

  // Fail-closed through the config (its AGENT_* layer) first, then the override variables.
  a = await agent(emu, { AGENT_GUARD_FAILCLOSED: "true", AGENT_GUARD_PINDIR: PIN });
  await a.waitForLog(/Runtime guard pinned/, 60_000);
  await keyed(a);
  await a.stop();
  check(
    "fail-closed: the agent says its pinned rules stay",
    /pinned rules stay in force/.test(a.log()),
  );
  check(
    "fail-closed: with no agent running, exec of /bin/sh is still denied",
    await execSh() === 126,
  );
  a = await agent(emu, { CAMBLET_GUARD_FAIL_CLOSED: "1", CAMBLET_GUARD_PIN_DIR: PIN });
  const took = await a.waitForLog(/Runtime guard pinned/, 60_000);
  check("the next agent takes the pins over", /replaced=[1-9]/.test(took), took);
  await a.stop();
  await sh(`rm -r ${PIN}`);
  check("removing the pin directory lifts the rules", await execSh() === 0);
} catch (e) {
  check("the lifecycle script ran to the end", false, String(e));
} finally {
  await workload.close();
  await emu.close();
  await Deno.writeTextFile(`${DIR}/results.json`, JSON.stringify(checks, null, 1));
}
Deno.exit(0);
