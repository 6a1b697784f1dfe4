// The audit's whole path, capture → context → judge (wasm, default rules) → sink, driven by real
// openat(2) calls at fixed rates, before and after side by side in one run (root):
//
//   deno run -A tests/audit/whole_path_bench.ts --before=/tmp/before14 [--after=.]
//     [--rates=5000,10000,20000,40000] [--seconds=3] [--busy=1] [--vary] [--slice=ms]
//
// Each (rate, tree) runs in its own agent process (the tree's own code and rules), alternating
// before/after. A generator process unlinks a file that does not exist at the rate (unlink is
// kept by the default rules' prefilter, before and after: "Delete or rename shell history" takes
// every path; no rule fires on a failed unlink); only its own calls are counted: kept = judged,
// lost = called − judged (ring buffer or agent queue). Agent CPU comes
// from /proc/self/stat (utime + stime) over the window, per 10k judged events/s (all events the
// agent judged, the host's too). `--busy=N` runs N competing busy loops meanwhile. `--vary`
// alternates two paths, so no event equals the one before it (unlike a flood of one syscall). `lagMs`: how late a 5 ms timer ran (p99, max) in the agent, what the kernel
// link's answers would wait for; `peakRssMB`: the agent's VmHWM. `--slice`: the judge's time
// slice (AuditCapture sliceMs).
import { exclusive } from "../_exclusive.ts";

const args = new Map(
  Deno.args.map((a) => a.replace(/^--/, "").split("=", 2) as [string, string | undefined]),
);
const ABSENT = "/tmp/camblet-audit-bench-absent";
const PATHS = args.has("vary") ? [`${ABSENT}-a`, `${ABSENT}-b`] : [`${ABSENT}-a`];
const seconds = Number(args.get("seconds") ?? 3);

/** utime + stime of this process, seconds (CLK_TCK is 100 on Linux). */
function cpuSeconds(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

const GENERATOR = `
import os, sys, time
rate, n, paths = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
print("ready", flush=True)
sys.stdin.readline()
t0 = time.monotonic(); done = 0
while done < n:
    target = min(n, int((time.monotonic() - t0) * rate) + 1)
    while done < target:
        try:
            os.unlink(paths[done % len(paths)])
        except FileNotFoundError:
            pass
        done += 1
    time.sleep(0.0002)
print(done, time.monotonic() - t0, flush=True)
`;

/** Unlinks PATHS `n` times at `rate`/s in a new process; resolves with its pid and elapsed time. */
async function generate(rate: number, n: number, onPid: (pid: number) => void) {
  const p = new Deno.Command("/usr/bin/python3", {
    args: ["-c", GENERATOR, String(rate), String(n), ...PATHS],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  onPid(p.pid);
  const reader = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("ready\n")) out += (await reader.read()).value ?? "";
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode("go\n"));
  await w.close();
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    out += r.value;
  }
  await p.status;
  const [done, elapsed] = out.split("\n")[1]!.split(" ").map(Number);
  return { pid: p.pid, done: done!, elapsed: elapsed! };
}

async function child(root: string, rate: number): Promise<void> {
  const r = root.replace(/\/?$/, "/");
  const { buildRules } = await import(`${r}tests/audit/_rules.ts`);
  const { loadRulesBytes } = await import(`${r}agent/audit/rules_file.ts`);
  const { AuditCapture, AuditEngine, jsonLinesSink } = await import(`${r}agent/audit/engine.ts`);
  const { AuditPrograms } = await import(`${r}driver/bpf/audit.ts`);
  const rules = await loadRulesBytes(await buildRules(`${r}policies/rego/audit`), "defaults");
  let lines = 0;
  const engine = new AuditEngine(rules, [jsonLinesSink(() => lines++)]);
  const programs = AuditPrograms.load(Deno.pid);
  const mine = new Map<number, number>();
  let watch = -1;
  const capture = AuditCapture.start({
    programs,
    engine,
    onInput: (i: { proc: { pid: number }; path: string }) => {
      if (i.proc.pid === watch && PATHS.includes(i.path)) {
        mine.set(watch, (mine.get(watch) ?? 0) + 1);
      }
    },
    ...(args.has("slice") ? { sliceMs: Number(args.get("slice")) } : {}),
  });
  const lags: number[] = [];
  let tick = performance.now();
  const lagTimer = setInterval(() => {
    const now = performance.now();
    lags.push(now - tick - 5);
    tick = now;
  }, 5);
  const settle = async (pid: number, n: number) => {
    // Until all of the generator's events are judged, or 2 s without progress.
    let last = -1, still = performance.now();
    while ((mine.get(pid) ?? 0) < n && performance.now() - still < 2000) {
      await new Promise((res) => setTimeout(res, 10));
      const got = mine.get(pid) ?? 0;
      if (got !== last) [last, still] = [got, performance.now()];
    }
    await capture.drain();
  };
  // Warm-up (JIT, caches), not counted.
  const warm = await generate(rate, Math.min(rate, 5000), (pid) => watch = pid);
  await settle(warm.pid, warm.done);
  const n = Math.round(rate * seconds);
  const s0 = programs.stats(), j0 = engine.judged, d0 = capture.dropped, c0 = cpuSeconds();
  const t0 = performance.now();
  lags.length = 0;
  const g = await generate(rate, n, (pid) => watch = pid);
  await settle(g.pid, g.done);
  const wall = (performance.now() - t0) / 1000, cpu = cpuSeconds() - c0;
  const s1 = programs.stats();
  const judged = engine.judged - j0;
  const kept = mine.get(g.pid) ?? 0;
  clearInterval(lagTimer);
  lags.sort((a, b) => a - b);
  await capture.close();
  programs.close();
  console.log(JSON.stringify({
    rate,
    achieved: Math.round(g.done / g.elapsed),
    called: g.done,
    kept,
    lost: g.done - kept,
    kernelLost: s1.lost - s0.lost,
    agentDropped: capture.dropped - d0,
    judgedPerS: Math.round(judged / wall),
    cpuPct: Math.round(cpu / wall * 1000) / 10,
    cpuPctPer10k: Math.round(cpu / wall / (judged / wall / 10000) * 1000) / 10,
    lagMs: [lags[Math.floor(lags.length * 0.99)] ?? 0, lags.at(-1) ?? 0].map((x) => Math.round(x)),
    violations: lines,
    peakRssMB: Number(/VmHWM:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/self/status"))![1]) >> 10,
  }));
}

async function parent(): Promise<void> {
  const trees = [
    ["before", args.get("before")],
    ["after", args.get("after") ?? new URL("../..", import.meta.url).pathname],
  ].filter((t): t is [string, string] => t[1] !== undefined);
  const rates = (args.get("rates") ?? "5000,10000,20000,40000").split(",").map(Number);
  const busy = Number(args.get("busy") ?? 0);
  const loops = Array.from(
    { length: busy },
    () => new Deno.Command("sh", { args: ["-c", "while :; do :; done"] }).spawn(),
  );
  const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  console.log(
    `load average at start: ${load()}; busy loops: ${busy}; ${seconds} s per run; unlinking ${
      PATHS.join(" and ")
    }`,
  );
  const rows: string[] = [];
  try {
    await exclusive(async () => {
      for (const [i, rate] of rates.entries()) {
        // Alternate which tree goes first, so a drifting load does not favour one.
        const order = i % 2 ? [...trees].reverse() : trees;
        for (const [name, root] of order) {
          const out = await new Deno.Command(Deno.execPath(), {
            args: [
              "run",
              "-A",
              // As the daemon runs (deno task start): a small young generation.
              "--v8-flags=--max-semi-space-size=2",
              `--config=${root.replace(/\/?$/, "/")}deno.json`,
              new URL(import.meta.url).pathname,
              "--child",
              `--root=${root}`,
              `--rate=${rate}`,
              `--seconds=${seconds}`,
              ...["vary", "slice"].filter((k) => args.has(k)).map((k) =>
                `--${k}${args.get(k) === undefined ? "" : `=${args.get(k)}`}`
              ),
            ],
            stderr: "inherit",
          }).output();
          const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
          rows.push(`${name.padEnd(6)} ${line}`);
          console.log(rows.at(-1));
        }
      }
    });
  } finally {
    for (const l of loops) l.kill();
  }
  console.log(`load average at end: ${load()}`);
}

if (args.has("child")) await child(args.get("root")!, Number(args.get("rate")));
else await parent();
