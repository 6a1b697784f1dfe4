/**
 * Every embedded BPF object (driver/bpf/build.ts's OBJECTS) is the build of its C source by the
 * clang recorded beside it, is a BPF ELF, and has the program sections its loader attaches.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { skip } from "../../tests/_skip.ts";
import { buildObject, OBJECTS, type ObjectSpec } from "./build.ts";

/** The program sections each loader expects (steering's are read by name in steering.ts). */
const SECTIONS: Record<keyof typeof OBJECTS, string[]> = {
  steer: [],
  guard: [
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
  ],
  audit: [
    "tp_btf/sys_enter",
    "tp_btf/sys_exit",
    "tp_btf/sched_process_exec",
    "tp_btf/sched_process_exit",
  ],
};

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

async function embedded(spec: ObjectSpec): Promise<{ bytes: Buffer; clang: string }> {
  const m = await import(`./${spec.generated}`) as Record<string, string>;
  return {
    bytes: Buffer.from(m[`${spec.constant}_OBJECT_BASE64`]!, "base64"),
    clang: m[`${spec.constant}_OBJECT_CLANG`]!,
  };
}

const clang = await clangVersion();

for (const [name, spec] of Object.entries(OBJECTS) as [keyof typeof OBJECTS, ObjectSpec][]) {
  const object = await embedded(spec);
  Deno.test({
    name:
      `${spec.generated} is the build of ${spec.source} (run driver/bpf/build.ts after editing)`,
    ignore: skip(
      clang === undefined
        ? "clang is not installed (Debian packages clang llvm libbpf-dev)"
        : clang !== object.clang &&
          `clang is "${clang}", the embedded object was built by "${object.clang}"`,
    ),
    async fn() {
      const built = await buildObject(spec);
      assert.equal(built.clangVersion, object.clang);
      assert.ok(
        Buffer.from(built.bytes).equals(object.bytes),
        `${spec.generated} is stale (${object.bytes.length} bytes embedded, ` +
          `${built.bytes.length} built): run \`deno run -A driver/bpf/build.ts\``,
      );
    },
  });

  Deno.test(`the embedded ${name} object is a BPF ELF with its program sections`, () => {
    const b = object.bytes;
    assert.deepEqual([...b.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
    assert.equal(b.readUInt16LE(18), 247, "e_machine EM_BPF");
    const text = b.toString("latin1");
    for (const sec of SECTIONS[name]) assert.ok(text.includes(sec), `section ${sec}`);
  });
}
