import assert from "node:assert/strict";
import { cgroup2Mount, cgroupIdOf, compileFilter, hostCgroupIds } from "./prefilter.ts";
import { AuditRulesError } from "./rules_error.ts";
import { filterGroups, workloadMask } from "../../driver/bpf/audit_filter.ts";

Deno.test("compileFilter: one group per declaration with its cgroup scope; the union stays as before", () => {
  const f = compileFilter([
    { rule: "shell in container", syscalls: ["execve"], containers: true },
    { rule: "web opens", syscalls: ["openat"], prefixes: ["/srv/"], workloads: [["app=web"]] },
    { rule: "etc", syscalls: ["openat"], prefixes: ["/etc/"] },
    { rule: "etc too", syscalls: ["openat"], prefixes: ["/etc/"] },
  ], "test");
  assert.deepEqual(f.syscalls, ["execve", "openat"]);
  assert.deepEqual(f.pathFiltered, ["openat"]);
  assert.deepEqual(f.prefixes, ["/etc/", "/srv/"]);
  assert.deepEqual(f.groups, [
    { rules: ["shell in container"], syscalls: ["execve"], containers: true },
    { rules: ["web opens"], syscalls: ["openat"], prefixes: ["/srv/"], workloads: [["app=web"]] },
    { rules: ["etc", "etc too"], syscalls: ["openat"], prefixes: ["/etc/"] },
  ]);
});

Deno.test("compileFilter: a bad cgroup declaration names the source, the rule and the field", () => {
  const bad = (d: unknown, re: RegExp) =>
    assert.throws(
      () => compileFilter([{ rule: "ok", syscalls: ["execve"] }, d], "rules.tar.gz"),
      (e: Error) => e instanceof AuditRulesError && re.test(e.message),
    );
  bad(
    { rule: "r", syscalls: ["execve"], containers: "yes" },
    /rules\.tar\.gz: rule "r": containers must be true or false/,
  );
  bad(
    { rule: "r", syscalls: ["execve"], workloads: [] },
    /rule "r": workloads must be a non-empty/,
  );
  bad(
    { rule: "r", syscalls: ["execve"], workloads: [["app=web"], ["app"]] },
    /rule "r": workloads\[1\] is \["app"\], not a list of "name=value" labels/,
  );
  bad(
    { rule: "r", syscalls: ["execve"], containers: true, workloads: [["a=b"]] },
    /rule "r": workloads cannot be given with containers/,
  );
  bad({ rule: "r", syscalls: ["openat"], writes: 1 }, /rule "r": writes must be true or false/);
  bad(
    { rule: "r", syscalls: ["execve"], cgroups: ["x"] },
    /rule "r": cgroups is not a filter field/,
  );
  bad(
    { rule: "r", syscalls: ["openat"], prefixes: ["/" + "x".repeat(300)] },
    /rule "r": prefixes has one of 301 bytes .*at most 254/,
  );
});

Deno.test("filterGroups: more groups than the kernel's 64 bits fold into the last, wider, never narrower", () => {
  const decls = Array.from({ length: 70 }, (_, i) => ({
    rule: `r${i}`,
    syscalls: ["openat"],
    prefixes: [`/p${i}/`],
  }));
  const f = compileFilter(decls, "t");
  assert.equal(f.groups!.length, 64);
  const last = f.groups![63]!;
  assert.equal(last.rules.length, 7);
  assert.equal(last.prefixes!.length, 7);
  // A folded scoped group and an unscoped one: the fold takes every cgroup.
  const g = filterGroups({
    syscalls: [],
    pathFiltered: [],
    prefixes: [],
    groups: [
      ...Array.from(
        { length: 63 },
        (_, i) => ({ rules: [`x${i}`], syscalls: [`openat`], prefixes: [`/x${i}`] }),
      ),
      { rules: ["c"], syscalls: ["execve"], containers: true },
      { rules: ["any"], syscalls: ["connect"] },
    ],
  });
  assert.deepEqual(g[63], { rules: ["any", "c"], syscalls: ["connect", "execve"] });
});

Deno.test("workloadMask: a workload matches a group when it has every label of one selector", () => {
  const groups = filterGroups({
    syscalls: [],
    pathFiltered: [],
    prefixes: [],
    groups: [
      { rules: ["a"], syscalls: ["connect"], workloads: [["app=web", "ns=prod"], ["app=db"]] },
      { rules: ["b"], syscalls: ["connect"], workloads: [[]] },
      { rules: ["c"], syscalls: ["execve"] },
    ],
  });
  assert.equal(workloadMask(groups, ["app=web", "ns=prod", "x=y"]), 0b11n);
  assert.equal(workloadMask(groups, ["app=web"]), 0b10n, "[] takes every pushed workload");
  assert.equal(workloadMask(groups, ["app=db"]), 0b11n);
});

Deno.test("hostCgroupIds: every cgroup but containers' (not walked into); cgroupIdOf reads /proc", async () => {
  const root = await Deno.makeTempDir();
  try {
    const id = "a".repeat(64);
    for (
      const d of [
        "system.slice/ssh.service",
        `system.slice/docker-${id}.scope/inner`,
        "user.slice/user-0.slice",
        `docker/${"b".repeat(64)}`,
      ]
    ) await Deno.mkdir(`${root}/${d}`, { recursive: true });
    const ino = (p: string) => BigInt(Deno.statSync(`${root}${p}`).ino!);
    const ids = new Set(hostCgroupIds(root));
    for (
      const p of [
        "",
        "/system.slice",
        "/system.slice/ssh.service",
        "/user.slice",
        "/user.slice/user-0.slice",
        "/docker",
      ]
    ) {
      assert.ok(ids.has(ino(p)), `${p || "/"} is a host cgroup`);
    }
    assert.equal(ids.size, 6, "the container cgroups and what is below them are not listed");
    // A fake /proc: the process's 0:: line names a cgroup below the mount.
    const proc = `${root}/proc`;
    await Deno.mkdir(`${proc}/42`, { recursive: true });
    await Deno.writeTextFile(`${proc}/42/cgroup`, "0::/system.slice/ssh.service\n");
    assert.equal(cgroupIdOf(42, proc, root), ino("/system.slice/ssh.service"));
    assert.equal(cgroupIdOf(43, proc, root), undefined, "a gone process");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("cgroup2Mount: finds this host's cgroup v2 hierarchy (or none)", () => {
  const m = cgroup2Mount();
  if (m !== undefined) assert.ok(Deno.statSync(`${m}/cgroup.procs`).isFile);
  const own = cgroupIdOf(Deno.pid);
  if (m !== undefined) assert.equal(typeof own, "bigint");
});
