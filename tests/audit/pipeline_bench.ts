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
  const programs = AuditPrograms.load(Deno.pid);
  const capture = AuditCapture.start({ programs, engine, pollMs: 5 });
  const n = 5000;
  const loop = `i=0; while [ $i -lt ${n} ]; do : < /etc/hosts; i=$((i+1)); done`;
  Deno.bench({
    name: `${n} kept events: capture → context → judge (default rules + 1) → sink`,
    n: 10,
    warmup: 1,
  }, async () => {
    const target = engine.judged + n;
    await new Deno.Command("sh", { args: ["-c", loop] }).output();
    for (let i = 0; engine.judged < target && i < 2000; i++) {
      await capture.drain();
      await new Promise((r) => setTimeout(r, 1));
    }
  });
  globalThis.addEventListener("unload", () => {
    const s = programs.stats();
    console.log(
      `pipeline: judged ${engine.judged}, sent ${s.sent}, lost in kernel ${s.lost}, ` +
        `dropped in agent ${capture.dropped}, filtered in kernel ${s.filtered}, violations ${lines}`,
    );
    programs.close();
    Deno.removeSync(dir, { recursive: true });
  });
}
