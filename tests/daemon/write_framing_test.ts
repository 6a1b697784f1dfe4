/**
 * "Exactly one message per write()": a pty does not show write boundaries, so this test watches
 * the agent's real write(2) calls on the device with strace.
 */
import assert from "node:assert/strict";
import { skip } from "../_skip.ts";
import { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";
import { syntheticTask } from "../../driver/emulator/tasks.ts";
import { startAgent } from "../fakes/agent_process.ts";

/** Decodes the C-style escapes strace prints (`\n`, `\"`, `\\`, octal, `\xHH`). */
function unescape(s: string): string {
  return s.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_m, e: string) => {
    if (e[0] === "x") return String.fromCharCode(parseInt(e.slice(1), 16));
    if (/^[0-7]+$/.test(e)) return String.fromCharCode(parseInt(e, 8));
    return ({ n: "\n", t: "\t", r: "\r", v: "\v", f: "\f", '"': '"', "\\": "\\" } as Record<
      string,
      string
    >)[e] ?? e;
  });
}

const strace = (() => {
  try {
    return Deno.statSync("/usr/bin/strace").isFile;
  } catch {
    return false;
  }
})();

/**
 * The strace line where `path` is opened, with the fd as group 1. With -f a call that another
 * thread interrupts is printed in two lines (`<unfinished ...>`, then `<... openat resumed>`).
 */
function deviceOpen(text: string, path: string): { index: number; 1: string } | undefined {
  const whole = new RegExp(`openat\\(AT_FDCWD, "${path}", [^)\\n]*\\) = (\\d+)`).exec(text);
  if (whole) return { index: whole.index, 1: whole[1]! };
  const start = new RegExp(
    `^(\\d+) +openat\\(AT_FDCWD, "${path}", [^\\n]*<unfinished \\.\\.\\.>`,
    "m",
  )
    .exec(text);
  if (!start) return undefined;
  const resumed = new RegExp(`^${start[1]} +<\\.\\.\\. openat resumed>[^\\n]*= (\\d+)`, "m")
    .exec(text.slice(start.index));
  return resumed ? { index: start.index, 1: resumed[1]! } : undefined;
}

Deno.test({
  name: "every write() to the device carries exactly one whole message (strace)",
  ignore: skip(!strace && "needs /usr/bin/strace"),
  fn: async () => {
    const emu = await KernelEmulator.open({ serializeCsrSign: false });
    const dir = await Deno.makeTempDir();
    const out = `${dir}/strace.txt`;
    const agent = await startAgent(emu, {
      wrap: [
        "strace",
        "-f",
        "-qq",
        "--seccomp-bpf",
        "-e",
        "trace=openat,write",
        "-s",
        "4194304",
        "-o",
        out,
        "--",
      ],
    });
    try {
      const requests = [];
      for (let i = 0; i < 40; i++) requests.push(emu.augment(syntheticTask(i)));
      for (let i = 0; i < 4; i++) {
        requests.push(emu.csrSign(`spiffe://acme.test/w${i}`, { ttl: "3600s" }));
      }
      await Promise.all(requests);
      assert.equal(await agent.stop(), 0);
      const text = await Deno.readTextFile(out);
      const open = deviceOpen(text, emu.path);
      assert.ok(open, `the agent opened the device:\n${text.slice(0, 4000)}`);
      const fd = open[1];
      // Only after the open: before it, the same fd number may have been a file (e.g. ca.pem).
      const writes = [
        ...text.slice(open.index).matchAll(
          new RegExp(`write\\(${fd}, "((?:[^"\\\\]|\\\\.)*)"(\\.\\.\\.)?, (\\d+)`, "g"),
        ),
      ];
      assert.ok(writes.length >= 4 + 44, `${writes.length} writes seen`);
      for (const w of writes) {
        assert.equal(w[2], undefined, "strace printed the whole buffer");
        const data = unescape(w[1]!);
        assert.equal(new TextEncoder().encode(data).length, Number(w[3]));
        assert.equal(
          data.indexOf("\n"),
          data.length - 1,
          `one message per write: ${data.slice(0, 80)}`,
        );
        JSON.parse(data);
      }
      const commands = writes.map((w) => JSON.parse(unescape(w[1]!)).command as string);
      assert.deepEqual(commands.slice(0, 4), [
        "load_config",
        "manage_trace_requests",
        "load_sd_info",
        "load_policies",
      ]);
      assert.equal(commands.filter((c) => c === "answer").length, 44);
      // Each write returned its full length (no partial line left behind).
      const results = [
        ...text.matchAll(new RegExp(`write\\(${fd}, .*?, (\\d+)\\) += (-?\\d+)`, "g")),
      ];
      for (const r of results) assert.equal(r[2], r[1]);
    } finally {
      await agent.stop("SIGKILL");
      await emu.close();
      await Deno.remove(dir, { recursive: true });
    }
    emu.assertHealthy();
  },
});
