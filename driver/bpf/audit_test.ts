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
