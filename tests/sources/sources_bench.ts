/**
 * How fast a policy change reaches the kernel, and what idle polling costs (issue 7).
 *
 * - "→ load_policies pushed": the real agent (a subprocess, `camblet-agent run`) on the kernel
 *   emulator, with a `git` or an `http` policy source of 50 files × 4 policies. A commit is made
 *   in a clone of a real local git remote (not timed), then the time from `git push` until the
 *   emulated kernel has read the `load_policies` holding it. Likewise a new signed bundle (built
 *   beforehand) put on a loopback HTTP server. Once driven by SIGHUP (every source checked at
 *   once; polling every 1 h) and once by the source's own polling every 100 ms (adds on average
 *   half an interval). Both include the agent's debounces (100 ms in the sources, 200 ms in the
 *   daemon) and the push itself.
 * - "→ compiled payload": the same changes into `PolicySources` in this process, up to the
 *   compiled snapshot (no daemon, no kernel): how much of the above is fetch, parse and compile.
 * - idle: CPU seconds per minute of an idle agent (utime + stime of the agent process and of the
 *   git processes it ran, from /proc) with a git and an http source, polled every 1 s (60 × the
 *   default rate) and at the default interval (60 s, which mostly measures the idle agent).
 *   CAMBLET_BENCH_IDLE_SECONDS sets the measuring time of each (default 20). Printed, measured
 *   once: the time column of these rows means nothing.
 *
 * Run: deno bench -A tests/sources/sources_bench.ts
 */
import { join } from "node:path";
import { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";
import { type PolicySnapshot, PolicySources } from "../../agent/sources/policy_sources.ts";
import { type AgentProcess, startAgent } from "../fakes/agent_process.ts";
import { makeBundle, signingKey } from "./_bundles.ts";
import { BundleServer } from "./_bundle_server.ts";
import { GitRemote } from "./_git_repo.ts";
import { specsFor } from "./_specs.ts";

const IDLE_SECONDS = Number(Deno.env.get("CAMBLET_BENCH_IDLE_SECONDS") ?? 20);

const policy = (name: string) =>
  `- selectors: [{process:name: ${name}}]\n  certificate: {workloadID: ${name}}\n`;
/** A realistic set: 50 policy files of 4 policies each; `w0-0-r<round>` marks the round. */
function policyFiles(prefix: string, round: number): Record<string, string> {
  const files: Record<string, string> = {};
  for (let f = 0; f < 50; f++) {
    files[`${prefix}policies/team${f}.yaml`] = [0, 1, 2, 3].map((i) =>
      policy(`w${f}-${i}-r${round}`)
    )
      .join("");
  }
  return files;
}

function nextSnapshot(sources: PolicySources): Promise<PolicySnapshot> {
  return new Promise((resolve) => {
    const off = sources.subscribe((s) => (off(), resolve(s)));
  });
}

const remote = await GitRemote.create();
await remote.commit(policyFiles("deploy/", 0), "initial");
const server = BundleServer.start();
const key = await signingKey();
let bundleRound = 0;
const bundle = async () =>
  await makeBundle({
    revision: `r${++bundleRound}`,
    files: policyFiles("", bundleRound),
    sign: { privateKey: key.privateKey },
  });
server.serve = { kind: "bundle", body: await bundle() };

type Kind = "git" | "http";

function sourceConfig(kind: Kind, pollInterval: string, cacheDir: string) {
  const poll = { pollInterval, jitter: pollInterval === "100ms" ? 0 : 0.1 };
  return kind === "git"
    ? { type: "git", name: "fleet", url: remote.url, ref: "main", dir: "deploy", cacheDir, ...poll }
    : {
      type: "http",
      name: "hub",
      url: server.url(),
      verification: { key: key.publicPem },
      ...poll,
    };
}

/** One running thing per bench key (an agent, or in-process sources); the previous one stops. */
let running: { key: string; stop(): Promise<void> } | undefined;
let agentPid: number | undefined;
// Nothing to await at the end of a bench file: kill the agent and clean up when the runner exits.
globalThis.addEventListener("unload", () => {
  try {
    if (agentPid) Deno.kill(agentPid, "SIGKILL");
  } catch { /* gone */ }
  Deno.removeSync(remote.root, { recursive: true });
});

async function keep<T extends { stop(): Promise<void> }>(
  key: string,
  make: () => Promise<T>,
): Promise<T> {
  if (running?.key !== key) {
    await running?.stop();
    running = undefined;
    running = { key, ...await make() };
  }
  return running as unknown as T;
}

interface Agent {
  emu: KernelEmulator;
  agent: AgentProcess;
  stop(): Promise<void>;
}

/** The agent on a fresh emulator with `sources` declared in its config file. */
async function agentWith(key: string, sources: Record<string, unknown>[]): Promise<Agent> {
  const config = join(remote.root, `config-${key.replaceAll(/\W/g, "_")}.yaml`);
  await Deno.writeTextFile(config, JSON.stringify({ plugins: { policySource: sources } }));
  const emu = await KernelEmulator.open();
  const agent = await startAgent(emu, { args: ["--config", config] });
  agentPid = agent.child.pid;
  return {
    emu,
    agent,
    async stop() {
      await agent.stop("SIGTERM");
      agentPid = undefined;
      await emu.close();
    },
  };
}

const pushed = (emu: KernelEmulator, round: number) =>
  emu.waitFor(
    () => emu.state.policies.policies.some((p) => p.certificate.workloadID === `w0-0-r${round}`),
    `round ${round} pushed`,
    30_000,
  );

let round = 0;
for (const polled of [false, true]) {
  const how = polled ? "polling every 100 ms" : "SIGHUP";
  const interval = polled ? "100ms" : "1h";
  Deno.bench({
    name: `git commit → load_policies pushed (${how})`,
    group: "git",
    n: 10,
    warmup: 1,
    async fn(b) {
      const key = `agent git ${polled}`;
      const { emu, agent } = await keep(
        key,
        () => agentWith(key, [sourceConfig("git", interval, join(remote.root, `cache-${key}`))]),
      );
      await remote.commit(policyFiles("deploy/", ++round), `round ${round}`, { push: false });
      b.start();
      await remote.git("push", "-q", "origin", "HEAD:main");
      if (!polled) agent.kill("SIGHUP");
      await pushed(emu, round);
      b.end();
    },
  });
  Deno.bench({
    name: `new HTTP bundle → load_policies pushed (${how})`,
    group: "http",
    n: 10,
    warmup: 1,
    async fn(b) {
      const key = `agent http ${polled}`;
      const { emu, agent } = await keep(
        key,
        () => agentWith(key, [sourceConfig("http", interval, "")]),
      );
      const body = await bundle();
      b.start();
      server.serve = { kind: "bundle", body };
      if (!polled) agent.kill("SIGHUP");
      await pushed(emu, bundleRound);
      b.end();
    },
  });
}

/** In-process sources (no agent): up to the compiled snapshot. */
async function inProcess(kind: Kind, polled: boolean) {
  const key = `sources ${kind} ${polled}`;
  const cache = join(remote.root, `cache-${key}`);
  return await keep(key, async () => {
    const sources = await PolicySources.start({
      specs: specsFor([sourceConfig(kind, polled ? "100ms" : "1h", cache)]),
      trustDomain: "acme.test",
      debounceMs: 0,
    });
    return { sources, stop: () => sources.dispose() };
  });
}

for (const polled of [false, true]) {
  const how = polled ? "polling every 100 ms" : "refresh()";
  Deno.bench({
    name: `git commit → compiled payload, in process (${how})`,
    group: "git",
    n: 10,
    warmup: 1,
    async fn(b) {
      const { sources } = await inProcess("git", polled);
      await remote.commit(policyFiles("deploy/", ++round), `round ${round}`, { push: false });
      const next = nextSnapshot(sources);
      b.start();
      await remote.git("push", "-q", "origin", "HEAD:main");
      if (!polled) await sources.refresh();
      await next;
      b.end();
    },
  });
  Deno.bench({
    name: `new HTTP bundle → compiled payload, in process (${how})`,
    group: "http",
    n: 10,
    warmup: 1,
    async fn(b) {
      const { sources } = await inProcess("http", polled);
      const body = await bundle();
      const next = nextSnapshot(sources);
      b.start();
      server.serve = { kind: "bundle", body };
      if (!polled) await sources.refresh();
      await next;
      b.end();
    },
  });
}

/** utime+stime of `pid` and of its reaped children (git), in ms (from /proc/<pid>/stat). */
function cpuMs(pid: number): { self: number; children: number } {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  const tick = 10; // USER_HZ = 100 on Linux
  return { self: (f[11]! + f[12]!) * tick, children: (f[13]! + f[14]!) * tick };
}

const measured = new Set<string>();
for (const interval of ["1s", "60s"]) {
  Deno.bench({
    name: `idle agent, git + http polled every ${interval}: CPU s/min printed`,
    n: 1,
    warmup: 0,
    async fn() {
      const key = `idle ${interval}`;
      // deno bench calls a bench at least 3 times; one measurement is enough (and 3 × slower).
      if (measured.has(key)) return;
      measured.add(key);
      const { agent } = await keep(key, () =>
        agentWith(key, [
          sourceConfig("git", interval, join(remote.root, `cache-${key}`)),
          sourceConfig("http", interval, ""),
        ]));
      // Startup is not idle: let it settle first.
      await new Promise((r) => setTimeout(r, 3000));
      const pid = agent.child.pid;
      const requests = server.seen.length;
      const before = cpuMs(pid);
      await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
      const after = cpuMs(pid);
      const perMin = (ms: number) => (ms / 1000 / IDLE_SECONDS * 60).toFixed(3);
      const self = after.self - before.self;
      const git = after.children - before.children;
      console.log(
        `idle ${IDLE_SECONDS} s, polling every ${interval}: agent ${perMin(self)} CPU s/min, ` +
          `git processes ${perMin(git)} CPU s/min, total ${perMin(self + git)} CPU s/min ` +
          `(${server.seen.length - requests} HTTP checks)`,
      );
    },
  });
}
