// The kernel link while the daemon audits a flood: `deno run -A tests/audit/daemon_link_bench.ts
// [rounds] [connects]` (root, opa peer). The real agent on the kernel emulator, audit on (default
// rules) and off, alternating, one agent at a time; each round floods refused loopback connects
// (they pass the prefilter and raise nothing) while `augment` is asked every 2 ms. Prints augment
// latency (p50, p99, max) during the flood and until the judge caught up, the flood's duration,
// events sent/lost/judged, and the agent's CPU per 10k judged events.
import { join } from "node:path";
import { exclusive } from "../_exclusive.ts";
import { captureMissing, RULES_DIR } from "./_rules.ts";
import { sh } from "./_shell.ts";
import { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";
import { ControlClient } from "../../agent/control/client.ts";
import type { AgentStatus } from "../../agent/daemon/status.ts";
import { startAgent } from "../fakes/agent_process.ts";
import { peerPath } from "../peers/ensure_peer.ts";

const why = captureMissing();
if (why) {
  console.error(`SKIP daemon_link_bench: ${why}`);
  Deno.exit(0);
}
const rounds = Number(Deno.args[0] ?? 2);
const n = Number(Deno.args[1] ?? 20_000);

const cpuTicks = (pid: number) => {
  const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
};
const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

interface Row {
  audit: boolean;
  p50: number;
  p99: number;
  max: number;
  asked: number;
  floodMs: number;
  sent: number;
  lost: number;
  judged: number;
  cpuMs: number;
}

async function round(audit: boolean): Promise<Row> {
  const dir = await Deno.makeTempDir({ prefix: "camblet-link-bench-" });
  const config = join(dir, "config.yaml");
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      agent: {
        audit: {
          enabled: audit,
          rules: RULES_DIR,
          opa: peerPath("opa"),
          sinks: { log: { enabled: false } },
        },
      },
    }),
  );
  const emu = await KernelEmulator.open();
  const agent = await startAgent(emu, { args: ["--config", config] });
  const control = new ControlClient(agent.socket);
  const events = async () => {
    const a = (await control.json<AgentStatus>("/v1/status")).audit;
    return a?.state === "running" ? a.events : undefined;
  };
  try {
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = closed.addr.port;
    closed.close();
    const before = await events();
    const latencies: number[] = [];
    let asking = true;
    const ask = (async () => {
      while (asking) {
        latencies.push((await emu.augment()).latencyMs);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const cpu0 = cpuTicks(agent.child.pid);
    const t0 = performance.now();
    await sh(
      `bash -c 'i=0; while [ $i -lt ${n} ]; do : 2>/dev/null 3<>/dev/tcp/127.0.0.1/${port}; ` +
        `i=$((i+1)); done'`,
    );
    const floodMs = performance.now() - t0;
    // Until the judge caught up (audit on), or as long again (off).
    const end = Date.now() + 60_000;
    for (;;) {
      const e = await events();
      if (!e || e.judged + e.queueDropped >= e.sent || Date.now() > end) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    if (!audit) await new Promise((r) => setTimeout(r, 200));
    asking = false;
    await ask;
    const cpuMs = (cpuTicks(agent.child.pid) - cpu0) * 10;
    const after = await events();
    return {
      audit,
      p50: pct(latencies, 0.5),
      p99: pct(latencies, 0.99),
      max: Math.max(...latencies),
      asked: latencies.length,
      floodMs,
      sent: (after?.sent ?? 0) - (before?.sent ?? 0),
      lost: (after?.lost ?? 0) - (before?.lost ?? 0),
      judged: (after?.judged ?? 0) - (before?.judged ?? 0),
      cpuMs,
    };
  } finally {
    control.close();
    await agent.stop();
    await emu.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const rows = await exclusive(async () => {
  const out: Row[] = [];
  for (let i = 0; i < rounds; i++) for (const a of [true, false]) out.push(await round(a));
  return out;
});
const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
console.log(`${n} refused connects per round; load average ${load}`);
console.log(
  "audit  augment p50/p99/max ms  asked  flood ms   sent    lost  judged  agent CPU ms  CPU ms/10k judged",
);
for (const r of rows) {
  console.log(
    [
      (r.audit ? "on" : "off").padEnd(6),
      `${r.p50.toFixed(1)}/${r.p99.toFixed(1)}/${r.max.toFixed(1)}`.padEnd(23),
      String(r.asked).padStart(5),
      r.floodMs.toFixed(0).padStart(9),
      String(r.sent).padStart(7),
      String(r.lost).padStart(7),
      String(r.judged).padStart(7),
      String(r.cpuMs).padStart(13),
      (r.judged ? (r.cpuMs / r.judged * 10_000).toFixed(0) : "-").padStart(18),
    ].join(" "),
  );
}
