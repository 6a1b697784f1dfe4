/**
 * augment latency with 1,000 processes running: uncached (every request collects), cached, and
 * with a collector that hangs. Run: `deno bench -A agent/attestation/augment_bench.ts`.
 * Besides Deno's table it prints p50/p99 from its own samples (Deno reports p75/p99).
 */
import { configSchema } from "../config/schema.ts";
import { fakeAttestor } from "../../tests/fakes/attestor_fakes.ts";
import { processAttestor } from "../../plugins/attestor/process/process.ts";
import { getLogger } from "@logtape/logtape";
import { systemClock } from "../../plugins/types.ts";
import { createAttestation } from "./builtin.ts";
import { Attestation } from "./runner.ts";
import { taskContextFromProc } from "../../plugins/attestor/_lib/task_from_proc.ts";
import type { TaskContext } from "../../driver/payloads.ts";

const COUNT = 1000;
const samples: Record<string, number[]> = {};
const children: Deno.ChildProcess[] = [];
for (let i = 0; i < COUNT; i++) {
  children.push(
    new Deno.Command("sleep", { args: ["600"], stdin: "null", stdout: "null", stderr: "null" })
      .spawn(),
  );
}
function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}
globalThis.addEventListener("unload", () => {
  // Our own percentiles (Deno's table has p75/p99, not p50).
  for (const [name, xs] of Object.entries(samples)) {
    console.log(
      `${name.padEnd(14)} n=${String(xs.length).padStart(6)}  p50=${
        pct(xs, 0.5).toFixed(3)
      } ms  p99=${pct(xs, 0.99).toFixed(3)} ms`,
    );
  }
  for (const c of children) {
    try {
      c.kill("SIGKILL");
    } catch {
      // gone
    }
  }
});
// Wait until every child has exec'd sleep.
const tasks: TaskContext[] = [];
for (const c of children) {
  for (;;) {
    const t = taskContextFromProc(c.pid);
    if (t && t.command_name === "sleep") {
      tasks.push(t);
      break;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

// The default collectors (process, systemd, linuxos, sysfsdmi).
const real = await createAttestation(configSchema.parse({}), { sweepIntervalMs: 0 });
const hangCtx = {
  log: getLogger(["camblet", "bench"]),
  clock: systemClock,
  trustDomain: "camblet",
  signal: new AbortController().signal,
};
const pc = processAttestor.parseConfig({});
if (!pc.ok) throw new Error("process config");
const withHang = new Attestation(
  [await processAttestor.create(pc.value, hangCtx), fakeAttestor({ name: "hang", hang: true })],
  { sweepIntervalMs: 0, budgetMs: 500 },
);

let i = 0;
for (const t of tasks) await real.augment(t);
const next = () => tasks[i++ % tasks.length]!;
async function timed(name: string, fn: () => Promise<unknown>) {
  const t0 = performance.now();
  await fn();
  (samples[name] ??= []).push(performance.now() - t0);
}

Deno.bench({
  name: "augment cached (1,000 processes)",
  group: "augment",
  baseline: true,
  async fn() {
    await timed("cached", () => real.augment(next()));
  },
});

Deno.bench({
  name: "augment uncached (1,000 processes)",
  group: "augment",
  async fn() {
    real.cache.clear();
    await timed("uncached", () => real.augment(next()));
  },
});

Deno.bench({
  name: "augment uncached, one collector hangs (budget 500 ms)",
  group: "hang",
  n: 20,
  warmup: 1,
  async fn() {
    withHang.cache.clear();
    await timed("hang uncached", () => withHang.augment(next()));
  },
});

Deno.bench({
  name: "augment cached, one collector hangs",
  group: "hang",
  async fn() {
    await timed("hang cached", () => withHang.augment(tasks[0]!));
  },
});
