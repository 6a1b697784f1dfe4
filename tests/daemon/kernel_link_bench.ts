/**
 * Kernel-link benchmarks under emulator load, against the real agent (subprocess: identity
 * manager, self-signed CA, attestation). Latency is what the emulated module measures: from
 * queueing a request to reading its answer.
 *
 *   deno bench -A tests/daemon/kernel_link_bench.ts
 *
 * - augment / csr_sign round trip while 100 requests are outstanding (a background filler keeps
 *   99 others in flight);
 * - 1,000 requests/s for 60 s (2 % csr_sign: the module caches certificates, so signing is rare;
 *   CAMBLET_BENCH_CSR_PERCENT changes it): deadline misses, p50/p99, agent RSS.
 *   Set CAMBLET_BENCH_SECONDS to shorten it.
 */
import { KernelEmulator, type RequestResult } from "../../driver/emulator/kernel_emulator.ts";
import { syntheticTask, taskOf } from "../../driver/emulator/tasks.ts";
import { startAgent } from "../fakes/agent_process.ts";

const emu = await KernelEmulator.open({ serializeCsrSign: false });
const agent = await startAgent(emu, { trustDomain: "acme.test" });
const python = new Deno.Command("/usr/bin/python3", {
  args: ["-c", "import time; time.sleep(3600)"],
}).spawn();
await new Promise((r) => setTimeout(r, 300));
const task = taskOf(python.pid);
const agentPid = agent.child.pid;
// Nothing to await at the end of a bench file: kill the agent when the runner exits.
globalThis.addEventListener("unload", () => {
  for (const pid of [agentPid, python.pid]) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
});

const csr = () => emu.csrSign("spiffe://acme.test/web", { ttl: "3600s", task });
let n = 0;
const augment = () => emu.augment(syntheticTask(n++));

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) / 1024 : 0;
}

function pct(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

const failures: RequestResult[] = [];
function check(r: RequestResult): RequestResult {
  if (!["answered", "issued", "refused"].includes(r.outcome)) failures.push(r);
  return r;
}

/** Keeps `count` requests in flight until stopped. */
function filler(count: number): { stop(): Promise<void> } {
  let running = true;
  const loops = Array.from({ length: count }, async (_, i) => {
    while (running) check(await (i % 10 === 0 ? csr() : augment()));
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

await Promise.all([csr(), augment()]); // warm the CA and the attestation cache

/** Round trips of `one` while 99 others are in flight; prints p50/p99 after the last run. */
function outstandingBench(name: string, one: () => Promise<RequestResult>, perRun: number): void {
  const runs = 5;
  let calls = 0;
  const lat: number[] = [];
  Deno.bench({
    name,
    group: "100 outstanding",
    n: runs,
    warmup: 1,
    fn: async (b) => {
      const f = filler(99);
      b.start();
      for (let i = 0; i < perRun; i++) lat.push(check(await one()).latencyMs);
      b.end();
      await f.stop();
      if (++calls === runs) {
        lat.sort((x, y) => x - y);
        console.log(
          `${name}: n=${lat.length} p50=${pct(lat, 0.5).toFixed(2)} ms p99=${
            pct(lat, 0.99).toFixed(2)
          } ms`,
        );
      }
    },
  });
}

outstandingBench("augment round trip, 100 outstanding", augment, 200);
outstandingBench("csr_sign round trip, 100 outstanding", csr, 40);

let sustainedRuns = 0;
let sustainedDone = false;
const csrPercent = Number(Deno.env.get("CAMBLET_BENCH_CSR_PERCENT") ?? 2);
Deno.bench({
  name: `1,000 requests/s (${csrPercent} % csr_sign, the rest augment)`,
  n: 1,
  warmup: 0,
  fn: async () => {
    // Deno.bench always runs a warmup first: keep it to one second, and measure once.
    if (sustainedDone) return;
    const seconds = sustainedRuns++ === 0 ? 1 : Number(Deno.env.get("CAMBLET_BENCH_SECONDS") ?? 60);
    const latency: Record<string, number[]> = { augment: [], csr_sign: [] };
    let maxRss = 0;
    const pending: Promise<void>[] = [];
    const start = performance.now();
    let sent = 0;
    while (performance.now() - start < seconds * 1000) {
      // Open loop: 10 requests per 10 ms slot, whatever the answers do.
      const target = (Math.floor((performance.now() - start) / 10) + 1) * 10;
      for (; sent < target; sent++) {
        const p = ((sent * csrPercent) % 100 < csrPercent ? csr() : augment()).then((r) => {
          check(r);
          latency[r.command]?.push(r.latencyMs);
        });
        pending.push(p);
        if (sent % 1000 === 0) maxRss = Math.max(maxRss, rssMiB(agentPid));
      }
      const wait = start + target - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    await Promise.all(pending);
    const elapsed = (performance.now() - start) / 1000;
    if (seconds === 1) return;
    const status = await (await fetch("http://x/v1/status", {
      client: Deno.createHttpClient({ proxy: { transport: "unix", path: agent.socket } }),
    })).json();
    const lines = [
      `sustained: ${sent} requests in ${elapsed.toFixed(1)} s (${(sent / elapsed).toFixed(0)}/s)`,
    ];
    for (const [c, l] of Object.entries(latency)) {
      l.sort((a, b) => a - b);
      lines.push(
        `  ${c}: n=${l.length} p50=${pct(l, 0.5).toFixed(2)} ms p99=${
          pct(l, 0.99).toFixed(2)
        } ms max=${pct(l, 1).toFixed(2)} ms`,
      );
    }
    lines.push(`  failures (timeouts, errors, invalid answers): ${failures.length}`);
    lines.push(
      `  emulator problems: ${emu.problems().length}; agent-reported deadline misses: ${status.kernel.deadlineMisses}`,
    );
    lines.push(`  agent RSS: max ${maxRss.toFixed(0)} MiB, now ${rssMiB(agentPid).toFixed(0)} MiB`);
    const k = status.kernel.latency;
    lines.push(
      `  agent-side (read → write) p50/p99 bucket bounds: augment ≤${k.augment?.p50Ms}/≤${k.augment?.p99Ms} ms, ` +
        `csr_sign ≤${k.csr_sign?.p50Ms}/≤${k.csr_sign?.p99Ms} ms; outcomes ${
          JSON.stringify(status.kernel.requests)
        }`,
    );
    console.log(lines.join("\n"));
    sustainedDone = true;
  },
});
