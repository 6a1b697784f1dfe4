// Each default audit rule triggered by a real command on this host, reported once with the
// right process chain; a similar command that should not trigger it does not.
import assert from "node:assert/strict";
import { skip } from "../_skip.ts";
import { buildRules, captureMissing } from "./_rules.ts";
import { AuditPrograms } from "../../driver/bpf/audit.ts";
import { loadRulesBytes } from "../../agent/audit/rules_file.ts";
import { AuditCapture, AuditEngine, type AuditRecord } from "../../agent/audit/engine.ts";
import { sh, under } from "./_shell.ts";

const why = captureMissing();

interface Case {
  rule: string;
  /** Shell command (run by `sh -c` as a child of this test). */
  hit: string;
  miss: string;
  /** The violating process's name and its parent's. */
  name: string;
  parent: string;
  /** Syscalls reported, one record each (default: one record). */
  syscalls?: string[];
}

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
    const memfd = `import os; fd = os.memfd_create("camblet"); ` +
      `os.write(fd, open("/bin/true", "rb").read()); os.execv(f"/proc/self/fd/{fd}", ["x"])`;
    // PTRACE_ATTACH one process; the miss asks PTRACE_INTERRUPT (0x4208), not an attach.
    const ptrace = "import ctypes, sys; ctypes.CDLL(None).ptrace(16, int(sys.argv[1]), 0, 0)";
    // kmod falls back to init_module when finit_module says ENOSYS (a kernel without modules):
    // two real load attempts, each reported once.
    const modSyscalls = await modulesSupported()
      ? ["finit_module"]
      : ["finit_module", "init_module"];
    const cases: Case[] = [
      {
        rule: "Read sensitive file untrusted",
        hit: "cat /etc/shadow",
        miss: "cat /etc/hostname",
        name: "cat",
        parent: "sh",
      },
      {
        rule: "Write below etc",
        hit: `touch ${etcFile}`,
        miss: "cat /etc/hostname",
        name: "touch",
        parent: "sh",
      },
      {
        rule: "Write below binary dir",
        hit: `touch ${binFile}`,
        miss: `touch ${tmp}/y`,
        name: "touch",
        parent: "sh",
      },
      {
        rule: "Netcat Remote Code Execution",
        hit: `${tmp}/nc -e /bin/sh 127.0.0.1 9`,
        miss: `${tmp}/nc -z 127.0.0.1 9`,
        name: "nc",
        parent: "sh",
      },
      {
        rule: "PTRACE attached to process",
        hit: `sleep 3 & p=$!; python3 -c '${ptrace}' $p; kill $p`,
        miss: `sleep 3 & p=$!; python3 -c '${ptrace.replace("(16,", "(0x4208,")}' $p; kill $p`,
        name: "python3",
        parent: "sh",
      },
      {
        rule: "Linux Kernel Module Injection Detected",
        hit: `insmod ${tmp}/bogus.ko`,
        miss: "lsmod",
        name: "insmod",
        parent: "sh",
        syscalls: modSyscalls,
      },
      {
        rule: "Set Setuid or Setgid bit",
        hit: `chmod u+s ${tmp}/f`,
        miss: `chmod 0640 ${tmp}/f`,
        name: "chmod",
        parent: "sh",
      },
      {
        rule: "Fileless execution via memfd_create",
        hit: `python3 -c '${memfd}'`,
        miss: "python3 -c pass",
        name: "",
        parent: "",
      },
      {
        rule: "Clear Log Activities",
        hit: `: > ${logFile}`,
        miss: `cat ${logFile}`,
        name: "sh",
        parent: "deno",
      },
      {
        rule: "Modify Shell Configuration File",
        hit: `echo x >> ${home}/.bashrc`,
        miss: `cat ${home}/.bashrc`,
        name: "sh",
        parent: "deno",
      },
      {
        rule: "Search Private Keys or Passwords",
        hit: `find ${tmp} -name id_rsa`,
        miss: `find ${tmp} -name f`,
        name: "find",
        parent: "sh",
      },
      {
        rule: "Detect outbound connections to common miner pool ports",
        hit: "bash -c 'echo > /dev/tcp/127.0.0.1/3333'",
        miss: "bash -c 'echo > /dev/tcp/127.0.0.1/1'",
        name: "bash",
        parent: "sh",
      },
      {
        rule: "Delete or rename shell history",
        hit: `rm ${tmp}/.bash_history`,
        miss: `rm ${tmp}/other`,
        name: "rm",
        parent: "sh",
      },
      {
        rule: "Mount by non-system program",
        hit: `unshare -m sh -c 'mount -t tmpfs none ${tmp}/m; true'`,
        miss: `unshare -m true`,
        name: "mount",
        parent: "sh",
      },
    ];
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
