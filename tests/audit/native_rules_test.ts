// Each default audit rule triggered by a real command on this host, reported once with the
// right process chain; a similar command that should not trigger it does not.
import assert from "node:assert/strict";
import { skip } from "../_skip.ts";
import { buildRules, captureMissing } from "./_rules.ts";
import { AuditPrograms } from "../../driver/bpf/audit.ts";
import { loadRulesBytes } from "../../agent/audit/rules_file.ts";
import { AuditCapture, AuditEngine, type AuditRecord } from "../../agent/audit/engine.ts";
import { sh, under } from "./_shell.ts";
import { EGRESS_RULE, nativeCases } from "./_triggers.ts";
import type { AuditInput } from "../../agent/audit/context.ts";
import { runCli } from "../cli/_run.ts";
import { processLabelsOf } from "../fakes/process_labels.ts";

const why = captureMissing();

/** Whether this kernel loads modules (else finit_module is ENOSYS). */
async function modulesSupported(): Promise<boolean> {
  try {
    await Deno.stat("/proc/modules");
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name:
    "default audit rules: each fires once for a real command, with its process chain; the near miss does not",
  ignore: skip(why),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "camblet-audit-" });
    const tag = crypto.randomUUID().slice(0, 8);
    const etcFile = `/etc/camblet-audit-${tag}`;
    const binFile = `/usr/local/bin/camblet-audit-${tag}`;
    const logFile = `/var/log/camblet-audit-${tag}.log`;
    const home = `/home/camblet-audit-${tag}`;
    await Deno.mkdir(home);
    await Deno.writeTextFile(logFile, "old log\n");
    await Deno.writeTextFile(`${tmp}/f`, "x");
    await Deno.writeTextFile(`${tmp}/.bash_history`, "ls\n");
    await Deno.writeTextFile(`${tmp}/other`, "x");
    await Deno.writeFile(`${tmp}/bogus.ko`, new Uint8Array(64));
    await Deno.copyFile("/bin/true", `${tmp}/nc`);
    await Deno.chmod(`${tmp}/nc`, 0o755);
    await Deno.mkdir(`${tmp}/m`);
    // kmod falls back to init_module when finit_module says ENOSYS (a kernel without modules):
    // two real load attempts, each reported once.
    const modSyscalls = await modulesSupported()
      ? ["finit_module"]
      : ["finit_module", "init_module"];
    const cases = nativeCases({ tmp, etcFile, binFile, logFile, home, modSyscalls });
    const rules = await loadRulesBytes(await buildRules(), "policies/rego/audit");
    const records: AuditRecord[] = [];
    const engine = new AuditEngine(rules, [(r) => records.push(r)]);
    const programs = AuditPrograms.load(Deno.pid);
    const capture = AuditCapture.start({ programs, engine, pollMs: 10 });
    const failures: string[] = [];
    try {
      for (const c of cases) {
        const want = c.syscalls ?? [];
        for (const [cmd, expect] of [[c.miss, 0], [c.hit, Math.max(1, want.length)]] as const) {
          records.length = 0;
          const shell = await sh(cmd);
          await new Promise((r) => setTimeout(r, 50));
          await capture.drain();
          const mine = records.filter((r) => r.rule === c.rule && under(r.process, shell));
          if (mine.length !== expect) {
            failures.push(
              `${c.rule}: "${cmd}" reported ${mine.length} times, expected ${expect}` +
                (mine.length ? `: ${mine.map((m) => m.output).join(" | ")}` : ""),
            );
            continue;
          }
          if (expect === 0) continue;
          if (want.length && mine.map((m) => m.event.syscall).join() !== want.join()) {
            failures.push(
              `${c.rule}: syscalls ${mine.map((m) => m.event.syscall)}, expected ${want}`,
            );
          }
          const r = mine[0]!;
          if (c.name && (r.process.name !== c.name || r.process.ancestors[0]?.name !== c.parent)) {
            failures.push(
              `${c.rule}: process ${r.process.name} < ${
                r.process.ancestors[0]?.name
              }, expected ${c.name} < ${c.parent}`,
            );
          }
          if (!r.process.ancestors.some((a) => a.pid === Deno.pid)) {
            failures.push(`${c.rule}: chain misses the test`);
          }
          if (!r.output || !r.severity || !r.time) {
            failures.push(`${c.rule}: incomplete record ${JSON.stringify(r)}`);
          }
        }
      }
      // Metrics per rule: every rule here fired at least once.
      const m = engine.metrics.counter("camblet_audit_violations_total", "");
      for (const c of cases) {
        const sev = m.get({ rule: c.rule, severity: "error" }) +
          m.get({ rule: c.rule, severity: "warning" }) +
          m.get({ rule: c.rule, severity: "notice" }) +
          m.get({ rule: c.rule, severity: "critical" });
        if (sev < 1) failures.push(`${c.rule}: no camblet_audit_violations_total`);
      }
      assert.match(
        engine.metrics.toPrometheus(),
        /camblet_audit_violations_total\{.*rule="Write below etc"/,
      );
      const s = capture.stats();
      assert.equal(s.lost, 0, "no event lost");
      assert.ok(s.filtered > 0, "the prefilter kept events in the kernel");
      assert.deepEqual(failures, []);
    } finally {
      await capture.close();
      programs.close();
      for (const p of [etcFile, binFile, logFile, home, tmp]) {
        await Deno.remove(p, { recursive: true }).catch(() => {});
      }
    }
  },
});

Deno.test({
  name:
    "egress rule: a real outbound connect fires once when egressPolicyOf says false, not when true or unknown; the recorded events judge the same with audit test",
  ignore: skip(why),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // A loopback listener (no internet), on a port no other rule watches (miner ports).
    let listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    while (MINER_PORTS.has(listener.addr.port)) {
      listener.close();
      listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    }
    const port = listener.addr.port;
    const accepting = (async () => {
      for await (const c of listener) c.close();
    })().catch(() => {});
    const tag = crypto.randomUUID().slice(0, 8);
    let policy: boolean | undefined;
    const rules = await loadRulesBytes(await buildRules(), "policies/rego/audit");
    const records: AuditRecord[] = [];
    const inputs: AuditInput[] = [];
    const engine = new AuditEngine(rules, [(r) => records.push(r)]);
    const programs = AuditPrograms.load(Deno.pid);
    const shells = new Set<number>();
    const capture = AuditCapture.start({
      programs,
      engine,
      pollMs: 10,
      labelsOf: () => Promise.resolve([`test:egress=${tag}`]),
      egressPolicyOf: (labels) => labels.includes(`test:egress=${tag}`) ? policy : undefined,
      onInput: (i) => {
        if (i.syscall === "connect" && i.addr?.port === port) inputs.push(i);
      },
    });
    const dir = await Deno.makeTempDir();
    try {
      const connect = async (p: boolean | undefined) => {
        policy = p;
        records.length = 0;
        const shell = await sh(`bash -c 'echo > /dev/tcp/127.0.0.1/${port}'`);
        shells.add(shell);
        await new Promise((r) => setTimeout(r, 50));
        await capture.drain();
        return records.filter((r) => r.rule === EGRESS_RULE && under(r.process, shell));
      };
      const hit = await connect(false);
      assert.equal(hit.length, 1, JSON.stringify(hit.map((r) => r.output)));
      const r = hit[0]!;
      assert.equal(r.process.name, "bash");
      assert.equal(r.process.ancestors[0]?.name, "sh");
      assert.ok(r.process.ancestors.some((a) => a.pid === Deno.pid), "chain reaches the test");
      assert.equal(r.severity, "notice");
      assert.equal(r.event.syscall, "connect");
      assert.deepEqual(r.event.addr, { family: 2, ip: "127.0.0.1", port });
      assert.match(
        r.output,
        new RegExp(`dest=127\\.0\\.0\\.1:${port} result 0 labels=test:egress=`),
      );
      assert.deepEqual(await connect(true), [], "a workload with an egress policy");
      assert.deepEqual(await connect(undefined), [], "unknown: never fires");

      // The same real inputs, recorded, through `camblet-agent audit test`.
      const mine = inputs.filter((i) =>
        shells.has(i.proc.pid) || i.ancestors.some((a) => shells.has(a.pid))
      );
      assert.deepEqual(mine.map((i) => i.workload?.egress_policy), [false, true, null]);
      await Deno.writeFile(`${dir}/rules.tar.gz`, await buildRules());
      await Deno.writeTextFile(
        `${dir}/events.jsonl`,
        mine.map((i) => JSON.stringify(i)).join("\n") + "\n",
      );
      const out = await runCli([
        "audit",
        "test",
        `${dir}/rules.tar.gz`,
        `${dir}/events.jsonl`,
        "-o",
        "json",
      ]);
      assert.equal(out.code, 0, out.stderr);
      const judged = out.stdout.trim().split("\n").filter((l) => l).map((l) => JSON.parse(l));
      assert.deepEqual(judged.map((j) => [j.rule, j.event.addr.port]), [[EGRESS_RULE, port]]);
      assert.match(out.stderr, /3 events, 1 violations/);
    } finally {
      await capture.close();
      programs.close();
      listener.close();
      await accepting;
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "a violation by a process that execs before its event is judged carries the labels of the program that made the call, not of the new one",
  ignore: skip(why),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // The real process attestor, asked by pid as the daemon asks it (it reads /proc then).
    const { labelsOf, dispose } = processLabelsOf();
    const rules = await loadRulesBytes(await buildRules(), "policies/rego/audit");
    const records: AuditRecord[] = [];
    const engine = new AuditEngine(rules, [(r) => records.push(r)]);
    const programs = AuditPrograms.load(Deno.pid);
    // Read only when drained below: the exec happens between the call and its judgement.
    const capture = AuditCapture.start({ programs, engine, labelsOf, pollMs: 3_600_000 });
    const child = new Deno.Command("bash", {
      args: ["-c", ": < /etc/shadow; read x; exec sleep 30"],
      stdin: "piped",
    }).spawn();
    const comm = () => Deno.readTextFileSync(`/proc/${child.pid}/comm`).trim();
    try {
      await new Promise((r) => setTimeout(r, 300)); // bash has read /etc/shadow, waits in read
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode("go\n"));
      await w.close();
      for (let i = 0; i < 300 && comm() !== "sleep"; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(comm(), "sleep");
      await capture.drain();
      const mine = records.filter((r) =>
        r.rule === "Read sensitive file untrusted" && r.process.pid === child.pid
      );
      assert.equal(mine.length, 1, JSON.stringify(records.map((r) => r.output)));
      const r = mine[0]!;
      assert.equal(r.process.name, "bash");
      assert.match(r.process.exe, /bash$/);
      assert.ok(!r.labels.includes("process:name=sleep"), `labels ${r.labels}`);
      assert.ok(!r.labels.some((l) => /^process:binary:path=.*sleep$/.test(l)), `${r.labels}`);
      // The process attestor's labels are the call's facts: bash, its pid and exe.
      assert.ok(r.labels.includes("process:name=bash"), `labels ${r.labels}`);
      assert.ok(r.labels.includes(`process:pid=${child.pid}`), `labels ${r.labels}`);
      assert.ok(r.labels.some((l) => /^process:binary:path=.*bash$/.test(l)), `${r.labels}`);
    } finally {
      child.kill();
      await child.status;
      await capture.close();
      programs.close();
      dispose();
    }
  },
});

/** rules.rego's miner_ports: a listener there would trigger that rule too. */
const MINER_PORTS = new Set([3333, 4444, 5555, 6666, 7777, 8888, 9999, 14444, 14433, 45560, 45700]);
