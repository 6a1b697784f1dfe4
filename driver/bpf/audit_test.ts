import assert from "node:assert/strict";
import { skip } from "../../tests/_skip.ts";
import { AuditPrograms } from "./audit.ts";
import type { RawAuditEvent } from "./audit_layout.ts";

const why = Deno.uid() !== 0 ? "needs root (CAP_BPF, CAP_PERFMON) to load tracepoint programs" : "";

Deno.test({
  name:
    "audit capture: a real exec and open arrive with result, argv, ancestors; the prefilter keeps the rest in the kernel",
  ignore: skip(why),
  async fn() {
    const a = AuditPrograms.load(Deno.pid);
    const got: RawAuditEvent[] = [];
    const rb = a.openEvents((e) => got.push(e));
    try {
      a.setFilter({
        syscalls: ["execve", "openat"],
        pathFiltered: ["openat"],
        prefixes: ["/etc/hostname"],
      });
      const dir = await Deno.makeTempDir();
      const child = await new Deno.Command("sh", {
        args: ["-c", `cat /etc/hostname /nonexistent/x ${dir}/missing >/dev/null 2>&1; true`],
      }).output();
      assert.ok(child.success);
      rb.consume();
      const mine = got.filter((e) => e.comm === "cat");
      const exec = mine.find((e) => e.syscall === "execve");
      assert.ok(exec, "execve of cat captured");
      assert.equal(exec.ret, 0);
      assert.deepEqual(exec.argv.slice(0, 2), ["cat", "/etc/hostname"]);
      assert.equal(exec.exeName, "cat");
      assert.equal(exec.ancestors[0]!.comm, "sh");
      assert.equal(exec.ancestors[1]!.pid, Deno.pid);
      const opens = mine.filter((e) => e.syscall === "openat").map((e) => e.path);
      assert.deepEqual(opens, ["/etc/hostname"], "only the prefix-matching open left the kernel");
      const open = mine.find((e) => e.syscall === "openat")!;
      assert.ok(open.ret >= 0);
      const s = a.stats();
      assert.ok(s.filtered >= 2, `filtered ${s.filtered}`); // at least /nonexistent/x and missing
      assert.equal(s.lost, 0);
      // A syscall outside the filter is not captured at all.
      a.setFilter({ syscalls: ["connect"], pathFiltered: [], prefixes: [] });
      got.length = 0;
      await new Deno.Command("true").output();
      rb.consume();
      assert.equal(got.filter((e) => e.comm === "true").length, 0);
      await Deno.remove(dir, { recursive: true });
    } finally {
      rb.close();
      a.close();
    }
  },
});

Deno.test({
  name: "audit filter: an unknown syscall is refused naming it, and the old filter stays",
  ignore: skip(why),
  fn() {
    const a = AuditPrograms.load(Deno.pid);
    try {
      a.setFilter({ syscalls: ["execve"], pathFiltered: [], prefixes: [] });
      assert.throws(
        () => a.setFilter({ syscalls: ["fork"], pathFiltered: [], prefixes: [] }),
        /syscall "fork"/,
      );
      assert.deepEqual(a.filter.syscalls, ["execve"]);
    } finally {
      a.close();
    }
  },
});

Deno.test({
  name: "audit capture: openat2's flags are read from its open_how struct",
  ignore: skip(why),
  async fn() {
    const a = AuditPrograms.load(Deno.pid);
    const got: RawAuditEvent[] = [];
    const rb = a.openEvents((e) => got.push(e));
    try {
      a.setFilter({ syscalls: ["openat2"], pathFiltered: [], prefixes: [] });
      const dir = await Deno.makeTempDir();
      // O_WRONLY|O_CREAT|O_TRUNC = 0o1101; struct open_how { u64 flags, mode, resolve }.
      const py =
        "import ctypes, struct, sys; how = ctypes.create_string_buffer(struct.pack('QQQ', 0o1101, 0o600, 0)); " +
        "fd = ctypes.CDLL(None, use_errno=True).syscall(437, -100, sys.argv[1].encode(), how, 24); sys.exit(0 if fd >= 0 else 1)";
      const out = await new Deno.Command("python3", { args: ["-c", py, `${dir}/f`] }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      rb.consume();
      const e = got.find((x) => x.path === `${dir}/f`);
      assert.ok(e, "openat2 captured");
      assert.equal(e.howFlags, 0o1101);
      assert.ok(e.ret >= 0);
      await Deno.remove(dir, { recursive: true });
    } finally {
      rb.close();
      a.close();
    }
  },
});

/** The cgroup v2 mount (a hybrid host mounts it at …/unified). */
function cgroup2(): string | undefined {
  for (const line of Deno.readTextFileSync("/proc/self/mountinfo").split("\n")) {
    const [pre, post] = line.split(" - ");
    if (post?.startsWith("cgroup2 ")) return pre!.split(" ")[4];
  }
  return undefined;
}

const cgroupWhy = why || (cgroup2() === undefined ? "no cgroup v2 hierarchy mounted" : "");

Deno.test({
  name:
    "audit prefilter by cgroup: a container-scoped and a workload-scoped rule see only their cgroups; the rest is kept out and counted as cgroup",
  ignore: skip(cgroupWhy),
  async fn() {
    const mount = cgroup2()!;
    const own = Deno.readTextFileSync("/proc/self/cgroup").split("\n")
      .find((l) => l.startsWith("0::"))!.slice(3);
    const hostId = BigInt(Deno.statSync(`${mount}${own === "/" ? "" : own}`).ino!);
    // A fresh cgroup the host set does not list: "a container" to the prefilter.
    const dir = `${mount}/camblet-audit-test-${crypto.randomUUID().slice(0, 8)}`;
    Deno.mkdirSync(dir);
    const newId = BigInt(Deno.statSync(dir).ino!);
    const a = AuditPrograms.load(Deno.pid);
    const got: RawAuditEvent[] = [];
    const rb = a.openEvents((e) => got.push(e));
    const tmp = await Deno.makeTempDir();
    // Opens of a marker file, by a cat in the fresh cgroup and by one in this test's.
    const opens = async (marker: string) => {
      got.length = 0;
      await Deno.writeTextFile(marker, "x");
      const inNew = await new Deno.Command("sh", {
        args: ["-c", `echo $$ > ${dir}/cgroup.procs && cat ${marker}`],
        stdout: "null",
      }).output();
      assert.ok(inNew.success);
      await new Deno.Command("cat", { args: [marker], stdout: "null" }).output();
      rb.consume();
      return got.filter((e) => e.syscall === "openat" && e.path === marker).map((e) => e.cgroupId);
    };
    try {
      a.setHostCgroups([hostId]);
      a.setFilter({
        syscalls: [],
        pathFiltered: [],
        prefixes: [],
        groups: [{ rules: ["in containers"], syscalls: ["openat"], containers: true }],
      });
      const before = a.stats();
      assert.deepEqual(await opens(`${tmp}/c`), [newId], "only the container's open left");
      const after = a.stats();
      assert.ok(after.filteredCgroup > before.filteredCgroup, "the host's open counted as cgroup");
      assert.equal(
        after.filtered - before.filtered,
        after.filteredCgroup - before.filteredCgroup +
          after.filteredPath - before.filteredPath,
      );

      a.setFilter({
        syscalls: [],
        pathFiltered: [],
        prefixes: [],
        groups: [{ rules: ["web"], syscalls: ["openat"], workloads: [["app=web", "env=test"]] }],
      });
      assert.deepEqual(await opens(`${tmp}/w0`), [], "no workload pushed: nothing leaves");
      a.setWorkloads([{ cgroupId: newId, labels: ["app=web", "env=test", "x=1"] }]);
      assert.deepEqual(await opens(`${tmp}/w1`), [newId], "the pushed workload's open left");
      a.setWorkloads([{ cgroupId: newId, labels: ["app=web"] }]);
      assert.deepEqual(await opens(`${tmp}/w2`), [], "a selector label missing: kept out");

      const d = a.describe();
      assert.deepEqual(d.groups, [{
        rules: ["web"],
        syscalls: ["openat"],
        prefixes: null,
        writes: false,
        cgroups: "workloads",
        selectors: [["app=web", "env=test"]],
        workloadCgroups: 0,
      }]);
      assert.equal(d.hostCgroups, 1);
      assert.equal(d.workloadCgroups, 1);
      assert.ok(d.counters.keptOut.cgroup > 0);

      // A bad group is refused naming the rule and the field; the old filter stays in force.
      assert.throws(
        () =>
          a.setFilter({
            syscalls: [],
            pathFiltered: [],
            prefixes: [],
            groups: [{ rules: ["bad"], syscalls: ["openat"], workloads: [["app"]] }],
          }),
        /rule "bad": workload selector \["app"\]/,
      );
      a.setWorkloads([{ cgroupId: newId, labels: ["app=web", "env=test"] }]);
      assert.deepEqual(await opens(`${tmp}/w3`), [newId], "the old filter still in force");
    } finally {
      rb.close();
      a.close();
      await Deno.remove(tmp, { recursive: true });
      // Its processes have exited; an empty cgroup can be removed.
      for (let i = 0; i < 20; i++) {
        try {
          Deno.removeSync(dir);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
  },
});

Deno.test({
  name:
    "audit prefilter: path prefixes are per rule (a prefix of one rule does not open another's syscall)",
  ignore: skip(why),
  async fn() {
    const a = AuditPrograms.load(Deno.pid);
    const got: RawAuditEvent[] = [];
    const rb = a.openEvents((e) => got.push(e));
    const tmp = await Deno.makeTempDir();
    try {
      a.setFilter({
        syscalls: [],
        pathFiltered: [],
        prefixes: [],
        groups: [
          { rules: ["opens below a"], syscalls: ["openat"], prefixes: [`${tmp}/a/`] },
          { rules: ["unlinks below b"], syscalls: ["unlinkat"], prefixes: [`${tmp}/b/`] },
          { rules: ["opens of b/keep"], syscalls: ["openat"], prefixes: [`${tmp}/b/keep`] },
        ],
      });
      for (const d of ["a", "b"]) await Deno.mkdir(`${tmp}/${d}`);
      for (const f of ["a/1", "b/1", "b/keep"]) await Deno.writeTextFile(`${tmp}/${f}`, "x");
      const before = a.stats();
      await new Deno.Command("sh", {
        args: [
          "-c",
          `cat ${tmp}/a/1 ${tmp}/b/1 ${tmp}/b/keep >/dev/null; rm ${tmp}/a/1 ${tmp}/b/1`,
        ],
      }).output();
      rb.consume();
      const mine = got.filter((e) => e.path.startsWith(tmp)).map((e) =>
        `${e.syscall} ${e.path.slice(tmp.length)}`
      );
      assert.deepEqual(mine.sort(), ["openat /a/1", "openat /b/keep", "unlinkat /b/1"]);
      assert.ok(a.stats().filteredPath - before.filteredPath >= 2, "b/1's open and a/1's unlink");
    } finally {
      rb.close();
      a.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "audit prefilter: a write-only rule's opens for reading stay in the kernel, counted as flags",
  ignore: skip(why),
  async fn() {
    const a = AuditPrograms.load(Deno.pid);
    const got: RawAuditEvent[] = [];
    const rb = a.openEvents((e) => got.push(e));
    const tmp = await Deno.makeTempDir();
    try {
      a.setFilter({
        syscalls: [],
        pathFiltered: [],
        prefixes: [],
        groups: [{
          rules: ["writes below tmp"],
          syscalls: ["openat", "truncate"],
          prefixes: [`${tmp}/`],
          writes: true,
        }],
      });
      await Deno.writeTextFile(`${tmp}/x`, "x");
      const before = a.stats();
      await new Deno.Command("sh", {
        args: ["-c", `cat ${tmp}/x >/dev/null; echo y >> ${tmp}/x; truncate -s 0 ${tmp}/x`],
      }).output();
      rb.consume();
      const mine = got.filter((e) => e.path === `${tmp}/x`).map((e) =>
        `${e.comm} ${e.syscall}${e.syscall === "openat" ? ` ${e.args[2]! & 3n}` : ""}`
      );
      // cat's read stays in; sh's append (O_WRONLY) and truncate(1)'s open or truncate leave.
      assert.ok(!mine.some((m) => m.startsWith("cat ")), mine.join());
      assert.ok(mine.includes("sh openat 1"), mine.join());
      assert.ok(mine.some((m) => m.startsWith("truncate ")), mine.join());
      assert.ok(a.stats().filteredFlags > before.filteredFlags, "cat's read counted as flags");
      assert.equal(a.describe().groups[0]!.writes, true);
    } finally {
      rb.close();
      a.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "audit prefilter: a relative open stays in the kernel when its cwd's first directory is under no prefix; from below one, or with '..', it is sent",
  ignore: skip(why),
  async fn() {
    const a = AuditPrograms.load(Deno.pid);
    const got: RawAuditEvent[] = [];
    const rb = a.openEvents((e) => got.push(e));
    const tmp = await Deno.makeTempDir(); // below /tmp: first directory "tmp"
    const under = "camblet-audit-test-absent";
    try {
      a.setFilter({
        syscalls: [],
        pathFiltered: [],
        prefixes: [],
        groups: [{
          rules: ["opens below /etc/…"],
          syscalls: ["openat"],
          prefixes: [`/etc/${under}/`],
        }],
      });
      await Deno.writeTextFile(`${tmp}/here`, "x");
      const before = a.stats();
      await new Deno.Command("sh", {
        args: [
          "-c",
          `cd ${tmp} && cat here ../../etc/${under}/dots; cd /etc && cat ${under}/rel; true`,
        ],
        stderr: "null",
        stdout: "null",
      }).output();
      rb.consume();
      const rel = got.filter((e) => e.comm === "cat" && !e.path.startsWith("/")).map((e) => e.path);
      assert.deepEqual(rel.sort(), [`${under}/rel`, `../../etc/${under}/dots`].sort());
      assert.ok(a.stats().filteredPath - before.filteredPath >= 1, "the open of 'here', as path");
    } finally {
      rb.close();
      a.close();
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
