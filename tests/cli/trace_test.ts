import assert from "node:assert/strict";
import { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";
import { syntheticTask } from "../../driver/emulator/tasks.ts";
import { startAgent } from "../fakes/agent_process.ts";
import { agentEntry, REPO_ROOT, runCli } from "./_run.ts";
import { until } from "../fakes/until.ts";

Deno.test("trace streams matching kernel lines and removes its kernel filter on exit", async () => {
  const emu = await KernelEmulator.open();
  const agent = await startAgent(emu);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      `--config=${REPO_ROOT}deno.json`,
      agentEntry(),
      "trace",
      "--command-name",
      "curl",
      "--control-socket",
      agent.socket,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const pump = (async () => {
    for await (const c of child.stdout) out += new TextDecoder().decode(c);
  })();
  const err = new Response(child.stderr).text();
  try {
    await until(
      () => emu.state.traceFilters.some((f) => f.command_name === "curl"),
      "the kernel filter",
    );
    assert.deepEqual(emu.state.traceFilters, [{ pid: 0, uid: 0, command_name: "curl" }]);
    const curl = syntheticTask(1, {
      command_name: "curl",
      command_path: "/usr/bin/curl",
      pid: 181,
    });
    emu.sendLog({ message: "policy match found", correlation_id: "7", id: "curl-policy" }, curl);
    emu.sendLog({ message: "not for us" }, syntheticTask(2, { command_name: "python3" }));
    emu.sendLog({ message: "TLS handshake done", level: "debug", correlation_id: "7" }, curl);
    await until(() => out.includes("TLS handshake done"), "the trace lines");
    const lines = out.trim().split("\n");
    assert.equal(lines.length, 2, out);
    assert.match(
      lines[0]!,
      /^\S+Z curl\[181\] uid=1000 trace "policy match found" correlation_id=7 id=curl-policy$/,
    );
    assert.match(lines[1]!, /curl\[181\] uid=1000 debug "TLS handshake done" correlation_id=7$/);
    child.kill("SIGINT");
    const status = await child.status;
    await pump;
    assert.equal(status.code, 0, await err);
    await until(() => emu.state.traceFilters.length === 0, "the filter removed");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    await pump;
    await err;
    await agent.stop();
    await emu.close();
  }
  emu.assertHealthy();
});

Deno.test("trace needs a filter the kernel can apply (usage errors exit 2)", async () => {
  const none = await runCli(["trace"]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /give at least one of --pid, --uid or --command-name/);
  const root = await runCli(["trace", "--uid", "0"]);
  assert.equal(root.code, 2);
  assert.match(root.stderr, /--uid 0 cannot be traced alone/);
});
