// Judged events per second through the wasm rules (the default set), and the cost of capture to
// a traced workload: `deno bench -A tests/audit/judge_bench.ts` (root for the capture group).
import { buildRules, captureMissing, opaMissing } from "./_rules.ts";
import { loadRulesBytes } from "../../agent/audit/rules_file.ts";
import { AuditEngine } from "../../agent/audit/engine.ts";
import type { AuditInput } from "../../agent/audit/context.ts";

const base: AuditInput = {
  time: "2026-12-03T10:00:00.000Z",
  syscall: "openat",
  ret: 3,
  path: "/etc/ld.so.cache",
  path2: "",
  flags: 0o2000000,
  mode: 0,
  argv: [],
  exe_name: "",
  addr: null,
  ptrace: null,
  mount: null,
  proc: {
    pid: 40,
    tid: 40,
    ppid: 30,
    name: "ls",
    exe: "/usr/bin/ls",
    cwd: "/",
    uid: 0,
    gid: 0,
    cmdline: "ls",
  },
  ancestors: [{ pid: 30, name: "sh", exe: "/usr/bin/sh" }, {
    pid: 1,
    name: "systemd",
    exe: "/sbin/init",
  }],
  container: { id: "", labels: {} },
  cgroup_id: "1",
  labels: [],
  spiffe_id: "",
};
const exec: AuditInput = {
  ...base,
  syscall: "execve",
  ret: 0,
  path: "/usr/bin/sh",
  argv: ["sh", "-c", "id"],
  proc: { ...base.proc, name: "sh", exe: "/usr/bin/sh" },
  container: { id: "a".repeat(64), labels: { "docker:label:app": "web" } },
};

if (!opaMissing()) {
  const engine = new AuditEngine(await loadRulesBytes(await buildRules(), "defaults"));
  Deno.bench({
    name: "judge openat, no violation (default rules, wasm)",
    group: "judge",
    baseline: true,
  }, () => {
    engine.judge(base);
  });
  Deno.bench(
    { name: "judge execve of a shell in a container (2 violations)", group: "judge" },
    () => {
      engine.judge(exec);
    },
  );
}

if (!captureMissing()) {
  const { AuditPrograms } = await import("../../driver/bpf/audit.ts");
  const n = 2000;
  const loop = `i=0; while [ $i -lt ${n} ]; do : < /etc/hostname; : < /etc/hosts; i=$((i+1)); done`;
  const run = () => new Deno.Command("sh", { args: ["-c", loop] }).output();
  Deno.bench(
    { name: `${2 * n} opens by sh, no programs`, group: "capture", baseline: true },
    async () => {
      await run();
    },
  );
  // Syscalls no rule names (read/write): they pay only the tracepoint and one array lookup.
  const dd = () =>
    new Deno.Command("dd", {
      args: ["if=/dev/zero", "of=/dev/null", "bs=1", "count=100000"],
      stderr: "null",
    })
      .output();
  Deno.bench({
    name: "200k untraced syscalls (dd bs=1), no programs",
    group: "untraced",
    baseline: true,
  }, async () => {
    await dd();
  });
  const programs = AuditPrograms.load(Deno.pid);
  // The default rules' filter: /etc/hostname and /etc/hosts are kept in the kernel (no prefix).
  programs.setFilter((await loadRulesBytes(await buildRules(), "defaults")).filter);
  Deno.bench({
    name: `${2 * n} opens by sh, capture + prefilter (all filtered in-kernel)`,
    group: "capture",
  }, async () => {
    await run();
  });
  Deno.bench(
    { name: "200k untraced syscalls (dd bs=1), capture loaded", group: "untraced" },
    async () => {
      await dd();
    },
  );
  globalThis.addEventListener("unload", () => programs.close());
}
