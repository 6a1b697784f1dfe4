import assert from "node:assert/strict";
import { skip } from "../../tests/_skip.ts";
import { Buffer } from "node:buffer";
import { buildObject, OBJECTS } from "./build.ts";
import { AUDIT_OBJECT_BASE64, AUDIT_OBJECT_CLANG } from "./audit_object.ts";

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
  : clang !== AUDIT_OBJECT_CLANG
  ? `clang is "${clang}", the embedded object was built by "${AUDIT_OBJECT_CLANG}"`
  : undefined;

Deno.test({
  name: "audit_object.ts is the build of audit.bpf.c (run driver/bpf/build.ts after editing)",
  ignore: skip(why),
  async fn() {
    const built = await buildObject(OBJECTS.audit);
    const embedded = Buffer.from(AUDIT_OBJECT_BASE64, "base64");
    assert.equal(built.clangVersion, AUDIT_OBJECT_CLANG);
    assert.ok(
      Buffer.from(built.bytes).equals(embedded),
      `audit_object.ts is stale (${embedded.length} bytes embedded, ${built.bytes.length} built): ` +
        "run `deno run -A driver/bpf/build.ts`",
    );
  },
});

Deno.test("the embedded audit object is a BPF ELF with the syscall tracepoint programs", () => {
  const b = Buffer.from(AUDIT_OBJECT_BASE64, "base64");
  assert.deepEqual([...b.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
  assert.equal(b.readUInt16LE(18), 247, "e_machine EM_BPF");
  const text = b.toString("latin1");
  for (
    const sec of [
      "raw_tracepoint/sys_enter",
      "raw_tracepoint/sys_exit",
      "tp_btf/sched_process_exec",
      "tp_btf/sched_process_exit",
    ]
  ) assert.ok(text.includes(sec), `section ${sec}`);
});
