/**
 * Bursts and CPU contention against the real agent on the kernel emulator, as a user's host sees
 * them: the agent started by its CLI, bursts of 10 / 100 / 1,000 `csr_sign` and `augment` queued
 * at once, optionally with N busy-loop processes competing for the CPU. Prints issued / refused /
 * late and p50 / p99 / max per burst, RSS idle and at 1,000 requests/s, and start to ready with the
 * quickstart policies and with 1,000 policies. A late answer is printed as a FAILURE.
 *
 *   deno task bench:burst [--contention 4] [--sizes 10,100,1000] [--sustained-seconds 10]
 *     [--root /path/to/other/checkout] [--cpu-prof dir] [--agent-v8-flags=--max-semi-space-size=2]
 *     (default: the flags of main.ts's #! line)
 *     [--skip-start] [--skip-sustained] [--agent-env MALLOC_ARENA_MAX=2,OTHER=1]
 *
 * Latency is what the emulated module measures: from queueing a request to reading its answer.
 * `csr_sign` bursts use 100 distinct CSRs (the module's one key, 100 SPIFFE IDs that 100 policies
 * give python3), cycled for the 1,000 burst.
 *
 * @module
 */
import { KernelEmulator, type RequestResult } from "../../driver/emulator/kernel_emulator.ts";
import { syntheticTask, taskOf } from "../../driver/emulator/tasks.ts";
import { startAgent } from "../fakes/agent_process.ts";
import { exclusive } from "../_exclusive.ts";

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  if (i >= 0) return Deno.args[i + 1];
  return Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}
const has = (name: string) => Deno.args.includes(`--${name}`);

const contention = Number(flag("contention") ?? 0);
const sizes = (flag("sizes") ?? "10,100,1000").split(",").map(Number);
const sustainedSeconds = Number(flag("sustained-seconds") ?? 10);
const root = flag("root");
const cpuProf = flag("cpu-prof");
/**
 * V8 flags for the agent, to measure heap settings; by default those of the `#!` line of the
 * agent's main.ts (what every launcher passes), `--agent-v8-flags=` for none.
 */
const v8Flags = flag("agent-v8-flags") ??
  /--v8-flags=(\S+)/.exec(
    Deno.readTextFileSync(
      root ? `${root.replace(/\/?$/, "/")}main.ts` : new URL("../../main.ts", import.meta.url),
    ).split("\n", 1)[0]!,
  )?.[1];
const agentDenoArgs = v8Flags ? [`--v8-flags=${v8Flags}`] : [];
/** Extra environment for the agent (e.g. `MALLOC_ARENA_MAX=2`), to measure allocator settings. */
const agentEnv: Record<string, string> = Object.fromEntries(
  (flag("agent-env") ?? "").split(",").filter((kv) => kv.includes("=")).map((kv) => {
    const i = kv.indexOf("=");
    return [kv.slice(0, i), kv.slice(i + 1)];
  }),
);
const WORKLOADS = 100;

/** 100 policies giving python3 the IDs w0…w99 (inbound ports 9000…), plus `extra` more. */
function policiesYaml(count: number, prefix = "w", port = 9000): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    out.push(
      `- selectors:\n    - process:name: python3\n      destination:port: ${port + i}\n` +
        `      direction: input\n  certificate:\n    workloadID: ${prefix}${i}\n    ttl: 1h\n` +
        `  connection:\n    mtls: STRICT\n`,
    );
  }
  return out.join("");
}

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Anonymous and file-backed resident MiB of a process (smaps_rollup). */
function rssSplit(pid: number): { anon: number; file: number } {
  try {
    const t = Deno.readTextFileSync(`/proc/${pid}/smaps_rollup`);
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(t)?.[1] ?? 0);
    return { anon: kb("Anonymous") / 1024, file: (kb("Rss") - kb("Anonymous")) / 1024 };
  } catch {
    return { anon: 0, file: 0 };
  }
}

/**
 * Where the anonymous RSS lives (smaps): the brk heap, glibc arenas (64 MiB-aligned mappings of
 * up to 64 MiB, counted with their guard halves), other anonymous mappings; and the thread count.
 */
function anonMap(pid: number): string {
  try {
    const lines = Deno.readTextFileSync(`/proc/${pid}/smaps`).split("\n");
    let heap = 0, arenas = 0, other = 0, nArenas = 0;
    let kind = "";
    for (const l of lines) {
      const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(l);
      if (m) {
        const size = (parseInt(m[2]!, 16) - parseInt(m[1]!, 16)) / 1024;
        const name = m[4]!.trim();
        const start = parseInt(m[1]!, 16);
        kind = name === "[heap]"
          ? "heap"
          : name === "" && m[3] === "0" && start % (64 * 1024 * 1024) === 0 && size <= 65536
          ? "arena"
          : name === "" && m[3] === "0"
          ? "other"
          : "";
        if (kind === "arena") nArenas++;
        continue;
      }
      const a = /^Anonymous:\s+(\d+) kB/.exec(l);
      if (a && kind) {
        const v = Number(a[1]) / 1024;
        if (kind === "heap") heap += v;
        else if (kind === "arena") arenas += v;
        else other += v;
      }
    }
    const threads = /Threads:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1];
    return `anon: brk heap ${heap.toFixed(0)}, ${nArenas} arena-like maps ${arenas.toFixed(0)}, ` +
      `other mmaps ${other.toFixed(0)} MiB; ${threads} threads`;
  } catch {
    return "smaps unavailable";
  }
}

/**
 * Per-isolate summary of `--trace-gc` lines in the agent's output (run with
 * `--agent-v8-flags=--trace-gc,…`): GC counts, pause total / max, last and max heap (committed).
 */
function gcSummary(log: string): string {
  const re =
    /\[\d+:(0x[0-9a-f]+)\]\s+\d+ ms: ([A-Za-z -]+?) [\d.]+ \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB,(?: pooled: [\d.]+ MB,)? ([\d.]+) \/ [\d.]+ ms/g;
  const by = new Map<
    string,
    { n: number; full: number; ms: number; max: number; last: string; top: number }
  >();
  for (const m of log.matchAll(re)) {
    const s = by.get(m[1]!) ?? { n: 0, full: 0, ms: 0, max: 0, last: "", top: 0 };
    s.n++;
    if (!m[2]!.includes("Scavenge") && !m[2]!.includes("Minor")) s.full++;
    s.ms += Number(m[6]);
    s.max = Math.max(s.max, Number(m[6]));
    s.last = `${m[4]} (${m[5]})`;
    s.top = Math.max(s.top, Number(m[3]), Number(m[5]));
    by.set(m[1]!, s);
  }
  return [...by].map(([iso, s]) =>
    `  isolate ${iso}: ${s.n} GCs (${s.full} full), pauses ${s.ms.toFixed(0)} ms total, ` +
    `max ${s.max.toFixed(1)} ms; heap after last ${s.last} MB, max committed ${s.top} MB`
  ).join("\n");
}

function memLine(pid: number): string {
  const s = rssSplit(pid);
  return `${rssMiB(pid).toFixed(0)} MiB (anon ${s.anon.toFixed(0)}, file ${s.file.toFixed(0)})`;
}

/** CPU time (user + system, ms) of a process, all its threads. */
function cpuMs(pid: number): number {
  try {
    const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

/** Runs a burst and reports the CPU the agent and this process (the emulator) spent on it. */
async function measured<T>(run: () => Promise<T>): Promise<[T, string]> {
  const a0 = cpuMs(agent.child.pid), b0 = cpuMs(Deno.pid), t0 = performance.now();
  const out = await run();
  const wall = performance.now() - t0;
  const a = cpuMs(agent.child.pid) - a0, b = cpuMs(Deno.pid) - b0;
  return [out, `  (wall ${wall.toFixed(0)} ms; CPU agent ${a} ms, emulator ${b} ms)`];
}

function pct(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

function loadavg(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
}

function busyLoops(n: number): Deno.ChildProcess[] {
  return Array.from({ length: n }, () =>
    new Deno.Command("/bin/sh", {
      args: ["-c", "while :; do :; done"],
      stdout: "null",
      stderr: "null",
    }).spawn());
}

let failures = 0;
function summarize(name: string, results: RequestResult[]): string {
  const count = (o: string) => results.filter((r) => r.outcome === o).length;
  const lat = results.map((r) => r.latencyMs).sort((a, b) => a - b);
  const late = results.filter((r) => r.outcome === "timeout" || r.latencyMs >= 1000).length;
  const bad = count("error") + count("invalid");
  const ok = name.trim().startsWith("csr_sign")
    ? `issued ${String(count("issued")).padStart(4)} refused ${
      String(count("refused")).padStart(4)
    }`
    : `answered ${String(count("answered")).padStart(4)}        `;
  let line = `${name.padEnd(16)} ${ok} late ${String(late).padStart(4)} error/invalid ${bad}  ` +
    `p50 ${pct(lat, 0.5).toFixed(1).padStart(7)} ms  p99 ${
      pct(lat, 0.99).toFixed(1).padStart(7)
    } ms` +
    `  max ${pct(lat, 1).toFixed(1).padStart(7)} ms`;
  if (late > 0 || bad > 0) {
    failures += late + bad;
    line += `\n  !!! FAILURE: ${late} late and ${bad} error/invalid answers to ${name} !!!`;
  }
  return line;
}

async function startTime(extraPolicies: number): Promise<number> {
  const emu = await KernelEmulator.open({ serializeCsrSign: false });
  const t0 = performance.now();
  const agent = await startAgent(
    emu,
    {
      ...(root ? { root } : {}),
      denoArgs: agentDenoArgs,
      env: agentEnv,
      prepare: extraPolicies > 0
        ? (dir) => Deno.writeTextFile(`${dir}/policies/bench.yaml`, policiesYaml(extraPolicies))
        : undefined,
    } as Parameters<typeof startAgent>[1],
  );
  const ms = performance.now() - t0;
  await agent.stop();
  await emu.close();
  return ms;
}

// The machine lock of the load tests, held to the end: two benches at once would time each other.
let releaseLock!: () => void;
const lockWait = performance.now();
await new Promise<void>((held) =>
  void exclusive(() => {
    held();
    return new Promise<void>((r) => releaseLock = r);
  })
);
if (performance.now() - lockWait > 1000) {
  console.log(
    `(waited ${((performance.now() - lockWait) / 1000).toFixed(0)} s for the machine lock)`,
  );
}
console.log(
  `burst bench: agent from ${root ?? "this checkout"}${v8Flags ? ` (V8 ${v8Flags})` : ""}` +
    `${flag("agent-env") ? ` (env ${flag("agent-env")})` : ""}; ` +
    `contention ${contention}; ` +
    `load average ${loadavg()}; ${navigator.hardwareConcurrency} CPUs`,
);

if (!has("skip-start")) {
  for (const n of [0, 1000]) {
    const runs: number[] = [];
    for (let i = 0; i < 2; i++) runs.push(await startTime(n));
    console.log(
      `start to ready (${n === 0 ? "quickstart, 2" : `${n + 2}`} policies): ${
        runs.map((r) => `${(r / 1000).toFixed(2)} s`).join(", ")
      }`,
    );
  }
}

const emu = await KernelEmulator.open({ serializeCsrSign: false });
const profDir = cpuProf ? await Deno.realPath(cpuProf).catch(() => cpuProf) : undefined;
const agent = await startAgent(emu, {
  ...(root ? { root } : {}),
  prepare: (dir) => Deno.writeTextFile(`${dir}/policies/bench.yaml`, policiesYaml(WORKLOADS)),
  env: agentEnv,
  denoArgs: [...agentDenoArgs, ...(profDir ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : [])],
});
const python = new Deno.Command("/usr/bin/python3", {
  args: ["-c", "import time; time.sleep(3600)"],
}).spawn();
const busy: Deno.ChildProcess[] = [];
const cleanup = () => {
  for (const p of [python, ...busy]) {
    try {
      p.kill("SIGKILL");
    } catch { /* gone */ }
  }
};
globalThis.addEventListener("unload", cleanup);
await new Promise((r) => setTimeout(r, 300));
const task = taskOf(python.pid);
const ids = Array.from({ length: WORKLOADS }, (_, i) => `spiffe://acme.test/w${i}`);
await Promise.all(ids.map((id) => emu.csrs.csr(id)));
const csr = (i: number) => emu.csrSign(ids[i % WORKLOADS]!, { ttl: "3600s", task });
let seq = 0;
const augment = () => emu.augment(syntheticTask(seq++));
// Warm up: attestation of the python process, the CA, one refusal.
await Promise.all([csr(0), augment(), emu.csrSign("spiffe://acme.test/nobody", { task })]);
await new Promise((r) => setTimeout(r, 2000));
const idleRss = memLine(agent.child.pid);
const idleMap = anonMap(agent.child.pid);
busy.push(...busyLoops(contention));
await new Promise((r) => setTimeout(r, 500));

for (const n of sizes) {
  const [c, cCpu] = await measured(() => Promise.all(Array.from({ length: n }, (_, i) => csr(i))));
  console.log(summarize(`csr_sign x${n}`, c) + cCpu);
  await new Promise((r) => setTimeout(r, 1000));
  const [a, aCpu] = await measured(() => Promise.all(Array.from({ length: n }, () => augment())));
  console.log(summarize(`augment x${n}`, a) + aCpu);
  await new Promise((r) => setTimeout(r, 1000));
}
const afterBurstRss = memLine(agent.child.pid);
const afterBurstMap = anonMap(agent.child.pid);

let sustainedLine = "";
if (!has("skip-sustained") && sustainedSeconds > 0) {
  const results: RequestResult[] = [];
  const pending: Promise<void>[] = [];
  let maxRss = 0, maxAnon = 0;
  const start = performance.now();
  let sent = 0;
  while (performance.now() - start < sustainedSeconds * 1000) {
    // Open loop: 10 requests per 10 ms slot, 2 % csr_sign (the module caches certificates).
    const target = (Math.floor((performance.now() - start) / 10) + 1) * 10;
    for (; sent < target; sent++) {
      pending.push((sent % 50 === 0 ? csr(sent) : augment()).then((r) => void results.push(r)));
      if (sent % 500 === 0) {
        maxRss = Math.max(maxRss, rssMiB(agent.child.pid));
        maxAnon = Math.max(maxAnon, rssSplit(agent.child.pid).anon);
      }
    }
    const wait = start + target - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const endMap = anonMap(agent.child.pid);
  await Promise.all(pending);
  const elapsed = (performance.now() - start) / 1000;
  await new Promise((r) => setTimeout(r, 2000));
  sustainedLine = `sustained ${(sent / elapsed).toFixed(0)} req/s for ${elapsed.toFixed(0)} s: ` +
    `RSS max ${maxRss.toFixed(0)} MiB (anon max ${maxAnon.toFixed(0)}); at the end ${endMap}; ` +
    `2 s later ${memLine(agent.child.pid)}\n` +
    summarize("  csr_sign", results.filter((r) => r.command === "csr_sign")) + "\n" +
    summarize("  augment", results.filter((r) => r.command === "augment"));
}
cleanup();
// What the agent itself measured (read → write): tells its own lateness from the pty's.
try {
  const status = await (await fetch("http://x/v1/status", {
    client: Deno.createHttpClient({ proxy: { transport: "unix", path: agent.socket } }),
  })).json();
  const k = status.kernel ?? {};
  console.log(
    `agent-side (read → write): deadline misses ${k.deadlineMisses}; p99 bucket ` +
      `csr_sign ≤${k.latency?.csr_sign?.p99Ms} ms, augment ≤${k.latency?.augment?.p99Ms} ms; ` +
      `outcomes ${JSON.stringify(k.requests)}`,
  );
} catch (e) {
  console.log(`agent status unavailable: ${(e as Error).message}`);
}
console.log(
  `RSS: idle ${idleRss}, after the bursts ${afterBurstRss}\n  idle ${idleMap}\n` +
    `  after the bursts ${afterBurstMap}`,
);
if (sustainedLine) console.log(sustainedLine);
const problems = emu.problems();
if (problems.length > 0) {
  console.log(`!!! FAILURE: the emulated module saw ${problems.length} problem(s): ${problems[0]}`);
}
const gcs = gcSummary(agent.log());
if (gcs) console.log(`V8 GCs per isolate (whole run):\n${gcs}`);
console.log(`load average at the end ${loadavg()}`);
await agent.stop("SIGINT");
await emu.close();
releaseLock();
if (failures > 0 || problems.length > 0) {
  console.log(`!!! FAILURE: ${failures} late or failed answers !!!`);
  Deno.exit(1);
}
