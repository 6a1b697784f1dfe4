// Judged events per second through the wasm rules (the default set), and the cost of capture to
// a traced workload: `deno bench -A tests/audit/judge_bench.ts` (root for the capture groups).
// `CAMBLET_AUDIT_BEFORE=<checkout>` also benches that checkout's judge and rules, side by side.
// Every judged input differs from the one before (its time), as a live stream's do, except in
// the "flood" group.
import { buildRules, captureMissing, opaMissing } from "./_rules.ts";
import { loadRulesBytes } from "../../agent/audit/rules_file.ts";
import { AuditEngine } from "../../agent/audit/engine.ts";
import { type AuditInput, openFlags } from "../../agent/audit/context.ts";

// One machine-loading bench at a time (tests/_exclusive.ts's lock), held until the module ends.
const lock = await Deno.open(
  `${Deno.env.get("TMPDIR") ?? "/tmp"}/camblet-agent-tests-exclusive.lock`,
  {
    create: true,
    write: true,
  },
);
await lock.lock(true);

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
const outOfScope: AuditInput = { ...base, path: "/usr/lib/x86_64-linux-gnu/libc.so.6" };
const hostExec: AuditInput = {
  ...base,
  syscall: "execve",
  ret: 0,
  path: "/usr/bin/ls",
  argv: ["ls", "-l"],
  proc: { ...base.proc, cmdline: "ls -l" },
};
delete hostExec.flags;
const exec: AuditInput = {
  ...hostExec,
  path: "/usr/bin/sh",
  argv: ["sh", "-c", "id"],
  proc: { ...base.proc, name: "sh", exe: "/usr/bin/sh" },
  container: { id: "a".repeat(64), labels: { "docker:label:app": "web" } },
};

/** 1024 copies of `i` a millisecond apart, with the fields the tree's own context adds. */
function stream(i: AuditInput, now: boolean): AuditInput[] {
  const t0 = Date.parse(i.time);
  return Array.from({ length: 1024 }, (_, k) => {
    const x: AuditInput = { ...i, time: new Date(t0 + k).toISOString() };
    if (now && x.flags !== undefined) x.open_flags = openFlags(x.flags);
    return x;
  });
}

if (!opaMissing()) {
  const before = Deno.env.get("CAMBLET_AUDIT_BEFORE")?.replace(/\/?$/, "/");
  const trees: [string, AuditEngine, boolean][] = [[
    "now",
    new AuditEngine(await loadRulesBytes(await buildRules(), "defaults")),
    true,
  ]];
  if (before) {
    const rf = await import(`${before}agent/audit/rules_file.ts`);
    const en = await import(`${before}agent/audit/engine.ts`);
    trees.push([
      "before",
      new en.AuditEngine(
        await rf.loadRulesBytes(await buildRules(`${before}policies/rego/audit`), "before"),
      ),
      false,
    ]);
  }
  const cases: [string, string, AuditInput][] = [
    ["open", "openat /etc/ld.so.cache for reading, no violation", base],
    ["out-of-scope", "openat below /usr/lib (no rule's prefix), no violation", outOfScope],
    ["host-exec", "execve of ls on the host, no violation", hostExec],
    ["shell-exec", "execve of a shell in a container (a violation)", exec],
  ];
  for (const [group, what, input] of cases) {
    for (const [name, engine, now] of trees) {
      const inputs = stream(input, now);
      let k = 0;
      Deno.bench({ name: `${name}: judge ${what}`, group, baseline: name === "now" }, () => {
        engine.judge(inputs[k++ & 1023]!);
      });
    }
  }
  for (const [name, engine, now] of trees) {
    const same = stream(base, now)[0]!;
    Deno.bench({
      name: `${name}: judge one openat repeated (a flood within a millisecond)`,
      group: "flood",
      baseline: name === "now",
    }, () => {
      engine.judge(same);
    });
  }
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
  // The default rules' filter: both files are below /etc/ (a prefix), so these opens are sent.
  programs.setFilter((await loadRulesBytes(await buildRules(), "defaults")).filter);
  Deno.bench({
    name: `${2 * n} opens by sh, capture + prefilter (sent, not read by anyone)`,
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
globalThis.addEventListener("unload", () => lock.close());
