import assert from "node:assert/strict";
import { P, R } from "../../driver/bpf/guard_layout.ts";
import { resolveRuntime } from "../policy/runtime.ts";
import { canonicalPaths, compileRuleset, expandGlob, type PathFs, ruleName } from "./compile.ts";

/** A tiny file tree: /bin -> /usr/bin, /usr/bin/{bash,dash,sh -> dash}. */
const FS: PathFs = {
  realPath(p) {
    const q = p.replace(/^\/bin(?=\/|$)/, "/usr/bin");
    if (q === "/usr/bin/sh") return "/usr/bin/dash";
    return ["/usr/bin", "/usr/bin/bash", "/usr/bin/dash", "/usr/bin/zcat", "/etc"].includes(q)
      ? q
      : undefined;
  },
  readDir(p) {
    return p === "/usr/bin" || p === "/bin" ? ["bash", "dash", "sh", "zcat"] : [];
  },
};

Deno.test("canonicalPaths resolves symlinks the way bpf_d_path reports them", () => {
  assert.deepEqual(canonicalPaths("/bin/sh", FS), ["/usr/bin/dash", "/bin/sh"]);
  assert.deepEqual(canonicalPaths("/bin/", FS), ["/usr/bin/", "/bin/"]);
  assert.deepEqual(canonicalPaths("/bin/**", FS), ["/usr/bin/", "/bin/"]);
  assert.deepEqual(canonicalPaths("/usr/bin/dash", FS), ["/usr/bin/dash"]);
  assert.deepEqual(canonicalPaths("/not/there", FS), ["/not/there"], "kept as written");
  assert.deepEqual(canonicalPaths("/bin/*sh", FS), [
    "/usr/bin/bash",
    "/bin/bash",
    "/usr/bin/dash",
    "/bin/dash",
    "/bin/sh",
  ]);
});

Deno.test("expandGlob matches * ? and [..] per component", () => {
  assert.deepEqual(expandGlob("/usr/bin/?ash", FS), ["/usr/bin/bash", "/usr/bin/dash"]);
  assert.deepEqual(expandGlob("/usr/bin/[bz]*", FS), ["/usr/bin/bash", "/usr/bin/zcat"]);
  assert.deepEqual(expandGlob("/usr/bin/[!bz]*", FS), ["/usr/bin/dash", "/usr/bin/sh"]);
  assert.deepEqual(expandGlob("/nowhere/*", FS), []);
});

Deno.test("compileRuleset: flags, merged path entries with their sources, notes", () => {
  const k = compileRuleset(
    resolveRuntime({
      mode: "audit",
      profiles: ["baseline"],
      exec: { allow: ["/usr/bin/bash"], deny: ["/bin/sh", "/usr/bin/sh"] },
      files: { denyRead: ["/etc/"], denyWrite: ["/etc/"] },
      rawSockets: "deny",
    }),
    FS,
  );
  const want = R.ACTIVE | R.AUDIT | R.EXEC_ALLOWLIST | R.READ_PATHS | R.WRITE_PATHS |
    R.EXEC_PATHS | R.SYSLOG | R.MODULE | R.BPF | R.MOUNT | R.PTRACE | R.RAW_SOCKET;
  assert.equal(k.flags, want >>> 0);
  assert.deepEqual(k.paths.map((p) => [p.path, p.flags]), [
    ["/bin/sh", P.EXEC_DENY],
    ["/etc/", P.READ_DENY | P.WRITE_DENY],
    ["/usr/bin/bash", P.EXEC_ALLOW],
    ["/usr/bin/dash", P.EXEC_DENY],
    ["/usr/bin/sh", P.EXEC_DENY],
  ]);
  assert.deepEqual(k.paths[3]!.from, [
    "exec deny /bin/sh (policy)",
    "exec deny /usr/bin/sh (policy)",
  ]);
  const none = compileRuleset(resolveRuntime({ exec: { deny: ["/nowhere/*"] } }), FS);
  assert.match(none.notes[0]!, /exec deny \/nowhere\/\* \(policy\) matches no file/);
  assert.equal(none.flags & (R.READ_PATHS | R.WRITE_PATHS | R.EXEC_PATHS), 0);
  // Each hook looks paths up only when some entry concerns it: exec rules cost opens nothing.
  const execOnly = compileRuleset(resolveRuntime({ exec: { deny: ["/bin/sh"] } }), FS);
  assert.equal(execOnly.flags & (R.READ_PATHS | R.WRITE_PATHS | R.EXEC_PATHS), R.EXEC_PATHS);
  const writeOnly = compileRuleset(resolveRuntime({ files: { denyWrite: ["/etc/"] } }), FS);
  assert.equal(writeOnly.flags & (R.READ_PATHS | R.WRITE_PATHS | R.EXEC_PATHS), R.WRITE_PATHS);
});

Deno.test("ruleName reads the bit in its hook's namespace", () => {
  assert.equal(ruleName("exec", P.EXEC_DENY), "exec.deny");
  assert.equal(ruleName("exec", R.EXEC_ALLOWLIST), "exec.allow");
  assert.equal(ruleName("open", P.READ_DENY), "files.denyRead");
  assert.equal(ruleName("open", P.WRITE_DENY), "files.denyWrite");
  assert.equal(ruleName("syslog", R.SYSLOG), "syslog");
  assert.equal(ruleName("socket_create", R.RAW_SOCKET), "rawSockets");
});
