import assert from "node:assert/strict";
import { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";
import { syntheticTask } from "../../driver/emulator/tasks.ts";
import { startAgent } from "../fakes/agent_process.ts";
import { runCli } from "./_run.ts";

Deno.test("status prints the running agent's state; json for scripts", async () => {
  const emu = await KernelEmulator.open();
  const agent = await startAgent(emu);
  try {
    for (let i = 0; i < 5; i++) await emu.augment(syntheticTask(i));
    const text = await runCli(["status", "--control-socket", agent.socket]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^camblet-agent \S+ \(pid \d+\), up \d+s: ready$/m);
    assert.match(
      text.stdout,
      /data plane +kernel module \/dev\/pts\/\d+ \(auto: \/dev\/pts\/\d+ exists\)/,
    );
    assert.match(text.stdout, /trust domain +acme\.test/);
    assert.match(text.stdout, /policies +2 \(revision 1\); 1 service address/);
    assert.match(text.stdout, /augment +5 \(ok 5\); latency p50 ≤[\d.]+ ms, p99 ≤[\d.]+ ms/);
    assert.match(text.stdout, /deadline misses 0/);
    assert.match(text.stdout, /plugins +ca\/self-signed up/);

    const json = await runCli(["status", "--control-socket", agent.socket, "--output", "json"]);
    assert.equal(json.code, 0, json.stderr);
    const s = JSON.parse(json.stdout);
    assert.equal(s.ready, true);
    assert.equal(s.kernel.requests.augment.ok, 5);
    assert.equal(s.kernel.deadlineMisses, 0);
    assert.equal(s.dataPlane.kind, "kernel");
  } finally {
    await agent.stop();
    await emu.close();
  }
});

Deno.test("status without an agent explains and exits 1; a bad --output exits 2", async () => {
  const gone = await runCli(["status", "--control-socket", "/nonexistent/agent.sock"]);
  assert.equal(gone.code, 1);
  assert.match(
    gone.stderr,
    /Cannot reach the agent at \/nonexistent\/agent\.sock: no agent is running/,
  );
  const bad = await runCli(["status", "--output", "xml"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--output must be one of text, json/);
});
