// The default rules' violations as the agent's wasm gives them equal the real opa's own (Go)
// evaluation of the same Rego, output lines included: the lines are joined by lib.line
// (concat, format_int) in the wasm, and opa's evaluator is the reference for what they mean.
import assert from "node:assert/strict";
import { skip } from "../_skip.ts";
import { buildRules, opaMissing, RULES_DIR } from "./_rules.ts";
import { peerPath } from "../peers/ensure_peer.ts";
import { loadRulesBytes } from "../../agent/audit/rules_file.ts";
import { type AuditInput, openFlags } from "../../agent/audit/context.ts";

const base: AuditInput = {
  time: "2026-12-03T10:00:00.000Z",
  syscall: "execve",
  ret: 0,
  path: "/usr/bin/sh",
  path2: "",
  mode: 0,
  argv: ["sh", "-c", "id"],
  exe_name: "sh",
  addr: null,
  ptrace: null,
  mount: null,
  proc: {
    pid: 40,
    tid: 40,
    ppid: 30,
    name: "sh",
    exe: "/usr/bin/sh",
    cwd: "/",
    uid: 0,
    gid: 0,
    cmdline: "sh -c id",
  },
  ancestors: [{ pid: 30, name: "bash", exe: "/usr/bin/bash" }],
  container: { id: "c".repeat(64), labels: {} },
  cgroup_id: "1",
  labels: ["app=web", "team=a"],
  spiffe_id: "",
};
const host = { id: "", labels: {} };
const open = (path: string, flags: number, over: Partial<AuditInput> = {}): AuditInput => ({
  ...base,
  syscall: "openat",
  ret: 3,
  path,
  flags,
  open_flags: openFlags(flags),
  ...over,
});

/** One input per default rule (and a few numbers: negative results, octal modes, ports). */
const CASES: AuditInput[] = [
  base,
  { ...base, proc: { ...base.proc, name: "apt-get" } },
  open("/etc/shadow", 0, { proc: { ...base.proc, name: "cat" }, container: host }),
  open("/etc/x", 577, { ret: -13, ancestors: [] }),
  open("/usr/bin/x", 1),
  open("/var/log/x", 577),
  open("/home/u/.bashrc", 1025),
  { ...base, proc: { ...base.proc, name: "nc" }, argv: ["nc", "-e", "/bin/sh"] },
  { ...base, proc: { ...base.proc, name: "grep" }, argv: ["grep", "-r", "id_rsa"] },
  { ...base, exe_name: "memfd:x" },
  { ...base, syscall: "ptrace", ptrace: { request: 16, pid: 99 } },
  { ...base, syscall: "finit_module", ret: -1 },
  { ...base, syscall: "fchmodat", path: "/tmp/x", mode: 0o4755 },
  {
    ...base,
    syscall: "connect",
    ret: -115,
    addr: { family: 2, ip: "1.2.3.4", port: 3333 },
    workload: { egress_policy: false },
  },
  { ...base, syscall: "unlinkat", path: "/root/.bash_history" },
  {
    ...base,
    syscall: "mount",
    path: "/mnt",
    mount: { flags: 0 },
    proc: { ...base.proc, name: "mount", uid: 1000 },
  },
  { ...base, syscall: "truncate", path: "/var/log/syslog" },
];

Deno.test({
  name: "default rules: the wasm's violations and output lines equal opa eval's of the same Rego",
  ignore: skip(opaMissing()),
  async fn() {
    const rules = await loadRulesBytes(await buildRules(), "policies/rego/audit");
    const wasm = CASES.map((c) =>
      rules.judge(c).map((v) => `${v.rule} | ${v.severity} | ${v.output}`).sort()
    );
    const query =
      "r := [vs | some c in input.cases; x := data.camblet.audit.violations with input as c; " +
      'vs := sort([concat(" | ", [v.rule, v.severity, v.output]) | some v in x])]';
    const out = await new Deno.Command(peerPath("opa"), {
      args: [
        "eval",
        "--stdin-input",
        "-f",
        "json",
        "-d",
        RULES_DIR,
        "--ignore",
        "*_test.rego",
        query,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = out.stdin.getWriter();
    await w.write(new TextEncoder().encode(JSON.stringify({ cases: CASES })));
    await w.close();
    const res = await out.output();
    assert.ok(res.success, new TextDecoder().decode(res.stderr));
    const go = JSON.parse(new TextDecoder().decode(res.stdout)).result[0].bindings.r as string[][];
    assert.deepEqual(wasm, go);
    // Every default rule fired on its input (the comparison above is not of empty sets).
    assert.equal(new Set(wasm.flat().map((l) => l.split(" | ")[0])).size, 17);
    assert.ok(wasm.flat().every((l) => !l.includes("%!")), "no sprintf format errors");
    assert.ok(
      wasm.flat().includes(
        "Set Setuid or Setgid bit | notice | Setuid or setgid bit set (file=/tmp/x mode=4755 " +
          `sh (pid 40, exe /usr/bin/sh, parent bash, uid 0, container ${"c".repeat(64)}))`,
      ),
    );
  },
});
