import assert from "node:assert/strict";
import { skip } from "../../tests/_skip.ts";
import { Buffer } from "node:buffer";
import { buildObject, OBJECTS } from "./build.ts";
import { GUARD_OBJECT_BASE64, GUARD_OBJECT_CLANG } from "./guard_object.ts";

async function clangVersion(): Promise<string | undefined> {
  try {
    const o = await new Deno.Command("clang", {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return o.success ? new TextDecoder().decode(o.stdout).split("\n")[0]!.trim() : undefined;
  } catch {
    return undefined;
  }
}

const clang = await clangVersion();
const why = clang === undefined
  ? "clang is not installed (Debian packages clang llvm libbpf-dev)"
  : clang !== GUARD_OBJECT_CLANG
  ? `clang is "${clang}", the embedded object was built by "${GUARD_OBJECT_CLANG}"`
  : undefined;

Deno.test({
  name: "guard_object.ts is the build of guard.bpf.c (run driver/bpf/build.ts after editing)",
  ignore: skip(why),
  async fn() {
    const built = await buildObject(OBJECTS.guard);
    const embedded = Buffer.from(GUARD_OBJECT_BASE64, "base64");
    assert.equal(built.clangVersion, GUARD_OBJECT_CLANG);
    assert.ok(
      Buffer.from(built.bytes).equals(embedded),
      `guard_object.ts is stale (${embedded.length} bytes embedded, ${built.bytes.length} built): ` +
        "run `deno run -A driver/bpf/build.ts`",
    );
  },
});

Deno.test("the embedded guard object is a BPF ELF with one program per LSM hook", () => {
  const b = Buffer.from(GUARD_OBJECT_BASE64, "base64");
  assert.deepEqual([...b.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
  assert.equal(b.readUInt16LE(18), 247, "e_machine EM_BPF");
  const text = b.toString("latin1");
  for (
    const sec of [
      "lsm/bprm_check_security",
      "lsm/file_open",
      "lsm/ptrace_access_check",
      "lsm/ptrace_traceme",
      "lsm/syslog",
      "lsm/sb_mount",
      "lsm/kernel_read_file",
      "lsm/kernel_module_request",
      "lsm/bpf",
      "lsm/socket_create",
      "lsm/task_fix_setuid",
      "lsm/task_alloc",
    ]
  ) assert.ok(text.includes(sec), `section ${sec}`);
});
