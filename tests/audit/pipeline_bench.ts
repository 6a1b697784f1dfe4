// The whole path, capture → context → judge (wasm) → sink, for 5000 kept events per iteration:
// `deno bench -A tests/audit/pipeline_bench.ts` (root). events/s = 5000 / time per iteration;
// lost (kernel ring) and dropped (agent queue) are printed at the end.
import { buildRules, captureMissing } from "./_rules.ts";
import { loadRulesBytes } from "../../agent/audit/rules_file.ts";
import { AuditCapture, AuditEngine, jsonLinesSink } from "../../agent/audit/engine.ts";

if (!captureMissing()) {
  const { AuditPrograms } = await import("../../driver/bpf/audit.ts");
  const dir = await Deno.makeTempDir();
  // The default rules plus one that keeps /etc/hosts opens (none of them violates).
  for (const e of Deno.readDirSync(new URL("../../policies/rego/audit", import.meta.url))) {
    await Deno.copyFile(
      new URL(`../../policies/rego/audit/${e.name}`, import.meta.url),
      `${dir}/${e.name}`,
    );
  }
  await Deno.writeTextFile(
    `${dir}/hosts.rego`,
    `package camblet.audit\nfilter contains {"rule": "hosts", "syscalls": ["openat"], "prefixes": ["/etc/hosts"]}\n`,
  );
  const rules = await loadRulesBytes(await buildRules(dir), "defaults + hosts");
  let lines = 0;
  const engine = new AuditEngine(rules, [jsonLinesSink(() => lines++)]);
  const captures: AuditCapture[] = [];
  const programs = AuditPrograms.load(Deno.pid);
  const n = 5000;
  const loop = `i=0; while [ $i -lt ${n} ]; do : < /etc/hosts; i=$((i+1)); done`;
  // Side by side: the judge yielding to the event loop every 5 ms (the default), and never.
  // One capture at a time (they would share the ring buffer): started by its bench's first run.
  let active: { sliceMs: number; capture: AuditCapture } | undefined;
  const captureFor = async (sliceMs: number) => {
    if (active?.sliceMs === sliceMs) return active.capture;
    if (active) await active.capture.close();
    active = { sliceMs, capture: AuditCapture.start({ programs, engine, pollMs: 5, sliceMs }) };
    captures.push(active.capture);
    return active.capture;
  };
  for (const sliceMs of [5, Infinity]) {
    Deno.bench({
      name: `${n} kept events: capture → context → judge → sink, yield every ${sliceMs} ms`,
      group: "pipeline",
      baseline: sliceMs === 5,
      n: 10,
      warmup: 1,
    }, async () => {
      const capture = await captureFor(sliceMs);
      const target = engine.judged + n;
      const lost = programs.stats().lost;
      await new Deno.Command("sh", { args: ["-c", loop] }).output();
      for (let i = 0; engine.judged < target - (programs.stats().lost - lost) && i < 5000; i++) {
        await capture.drain();
        await new Promise((r) => setTimeout(r, 1));
      }
    });
  }
  globalThis.addEventListener("unload", () => {
    const s = programs.stats();
    console.log(
      `pipeline: judged ${engine.judged}, sent ${s.sent}, lost in kernel ${s.lost}, ` +
        `dropped in agent ${
          captures.map((c) => c.dropped)
        }, filtered in kernel ${s.filtered}, violations ${lines}`,
    );
    programs.close();
    Deno.removeSync(dir, { recursive: true });
  });
}
