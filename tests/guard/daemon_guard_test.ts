/**
 * The runtime guard in the real agent (subprocess on the kernel emulator), on hosts where it
 * cannot enforce: this CI host's kernel refuses BPF LSM programs (EPERM), and a kernel without
 * bpf in lsm= is simulated with CAMBLET_GUARD_LSM_LIST. Enforcement itself: enforce_test.ts.
 */
import assert from "node:assert/strict";
import { skip } from "../_skip.ts";
import { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";
import { ControlClient } from "../../agent/control/client.ts";
import type { AgentStatus } from "../../agent/daemon/status.ts";
import { startAgent } from "../fakes/agent_process.ts";

const policy = (mode: string) => async (dir: string) => {
  await Deno.writeTextFile(
    `${dir}/policies/guard.yaml`,
    `- selectors: [{process:name: web}]\n  certificate: {workloadID: web}\n` +
      `  runtime: {mode: ${mode}, profiles: [baseline], exec: {deny: [/bin/sh]}}\n`,
  );
};

async function refusal(env: Record<string, string>): Promise<string | undefined> {
  const emu = await KernelEmulator.open();
  try {
    return await startAgent(emu, { prepare: policy("enforce"), env }).then(
      async (a) => {
        await a.stop();
        return undefined;
      },
      (e: Error) => e.message,
    );
  } finally {
    await emu.close();
  }
}

Deno.test("enforce rules on a kernel without bpf in lsm=: the agent refuses to start, naming lsm=…,bpf", async () => {
  const lsm = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(lsm, "lockdown,capability,landlock,yama");
    const err = await refusal({ CAMBLET_GUARD_LSM_LIST: lsm });
    assert.ok(err, "the agent must not start");
    assert.match(err, /without "bpf"/);
    assert.match(err, /lsm=lockdown,capability,landlock,yama,bpf/);
    assert.match(err, /Refusing 1 policy with enforce runtime rules \(.*guard\.yaml item 0\)/);
  } finally {
    await Deno.remove(lsm);
  }
});

Deno.test({
  name: "enforce rules where the kernel refuses BPF LSM programs (this host): EPERM, refused",
  ignore: skip(Deno.uid() !== 0 && "needs root (the kernel must refuse the BPF LSM programs)"),
  async fn() {
    const lsm = await Deno.makeTempFile();
    try {
      await Deno.writeTextFile(lsm, "capability,bpf");
      const err = await refusal({ CAMBLET_GUARD_LSM_LIST: lsm });
      if (err === undefined) {
        console.warn("this kernel allows BPF LSM programs: the agent started (not a refusal host)");
        return;
      }
      assert.match(err, /refused them \(EPERM/);
      assert.match(err, /Refusing 1 policy with enforce runtime rules/);
    } finally {
      await Deno.remove(lsm);
    }
  },
});

Deno.test("audit-only rules without BPF LSM: the agent runs and says the guard is unavailable", async () => {
  const emu = await KernelEmulator.open();
  const lsm = await Deno.makeTempFile();
  await Deno.writeTextFile(lsm, "capability,yama");
  const agent = await startAgent(emu, {
    prepare: policy("audit"),
    env: { CAMBLET_GUARD_LSM_LIST: lsm },
  });
  try {
    await agent.waitForLog(/Runtime guard not running; audit-mode runtime rules are not reported/);
    const control = new ControlClient(agent.socket);
    const s = await control.json<AgentStatus>("/v1/status");
    assert.equal(s.runtimeGuard?.state, "unavailable");
    assert.match((s.runtimeGuard as { reason: string }).reason, /lsm=capability,yama,bpf/);
    const r = await control.get("/v1/events");
    assert.equal(r.status, 400);
    assert.match(await r.text(), /runtime guard is not running/);
  } finally {
    await agent.stop();
    await emu.close();
    await Deno.remove(lsm);
  }
});
