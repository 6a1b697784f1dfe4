/**
 * A policy set far past the kernel's limits (one 7 MB file of 94,000 policies) is refused without
 * stalling the agent: every kernel request made while it is being read and refused is answered in
 * time and correctly (a certificate, not a refusal), and the last good set stays in force.
 */
import assert from "node:assert/strict";
import { KernelEmulator, type RequestResult } from "../../driver/emulator/kernel_emulator.ts";
import { taskOf } from "../../driver/emulator/tasks.ts";
import { ControlClient } from "../../agent/control/client.ts";
import type { AgentStatus } from "../../agent/daemon/status.ts";
import { startAgent } from "../fakes/agent_process.ts";
import { until } from "../fakes/until.ts";

function bigPolicyFile(n: number, pad = ""): string {
  const items: string[] = [];
  for (let i = 0; i < n; i++) {
    items.push(`- selectors: [{process:name: p${i}${pad}}]\n  certificate: {workloadID: w${i}}\n`);
  }
  return items.join("");
}

const cases = [
  // Refused from its text: more entries than one kernel write can hold.
  { name: "94,000 policies", text: () => bigPolicyFile(94_000), why: /refused before parsing/ },
  // Within the entry bound: parsed and compiled (off the answering thread), refused for its size.
  {
    name: "9,000 policies with long selectors",
    text: () => bigPolicyFile(9_000, "x".repeat(700)),
    why: /load_policies: the message would be \d+ bytes/,
  },
];

for (const c of cases) {
  Deno.test(`a 7 MB policy set (${c.name}) is refused while kernel answers stay in time`, () =>
    refusedInTime(c.text(), c.why));
}

async function refusedInTime(text: string, why: RegExp): Promise<void> {
  const emu = await KernelEmulator.open({ serializeCsrSign: false });
  const agent = await startAgent(emu);
  const control = new ControlClient(agent.socket);
  const python = new Deno.Command("/usr/bin/python3", {
    args: ["-c", "import time; time.sleep(120)"],
  }).spawn();
  try {
    await until(
      () => Deno.readTextFileSync(`/proc/${python.pid}/comm`).trim() === "python3",
      "python3 to start",
    );
    const task = taskOf(python.pid);
    const first = await emu.csrSign("spiffe://acme.test/web", { ttl: "3600s", task });
    assert.equal(first.outcome, "issued", first.check?.problems.join("; "));

    assert.ok(text.length > 6.5e6, `${text.length} bytes`);
    await Deno.writeTextFile(`${agent.dir}/big.tmp`, text);
    await Deno.rename(`${agent.dir}/big.tmp`, `${agent.dir}/policies/big.yaml`);

    // Requests keep coming while the agent reads, checks and refuses the set, and a while after.
    // Sent on a clock, not one after another: a stalled agent meets many requests at once.
    const pending: Promise<RequestResult>[] = [];
    let rejectedAt: number | undefined;
    const ticker = setInterval(() => {
      pending.push(emu.augment(task));
      pending.push(emu.csrSign("spiffe://acme.test/web", { ttl: "3600s", task }));
    }, 100);
    try {
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline) {
        const s = await control.json<AgentStatus>("/v1/status");
        if (s.policy.lastReload?.outcome === "rejected") break;
        await new Promise((r) => setTimeout(r, 100));
      }
      rejectedAt = Date.now();
      await new Promise((r) => setTimeout(r, 2000));
    } finally {
      clearInterval(ticker);
    }
    const results = await Promise.all(pending);
    assert.ok(rejectedAt !== undefined, `the set was never refused:\n${agent.log()}`);
    const bad = results.filter((r) =>
      r.latencyMs >= 1000 ||
      (r.command === "augment" ? r.outcome !== "answered" : r.outcome !== "issued")
    );
    assert.deepEqual(
      bad.map((r) => `${r.command} ${r.outcome} ${Math.round(r.latencyMs)} ms`),
      [],
      `${bad.length} of ${results.length} requests late or refused`,
    );
    const labels = results.find((r) => r.command === "augment")?.labels ?? [];
    assert.ok(labels.includes("process:name=python3"), labels.join(" "));

    const s = await control.json<AgentStatus>("/v1/status");
    const problems = s.policy.lastReload!.problems.join("\n");
    assert.match(problems, why);
    assert.match(problems, /big\.yaml|load_policies/);
    assert.equal(s.policy.policies, 2, "the last good set stays in force");
    assert.deepEqual(
      emu.state.policies.policies.map((p) => p.certificate.workloadID).sort(),
      ["curl", "web"],
    );
    const after = await emu.csrSign("spiffe://acme.test/web", { ttl: "3600s", task });
    assert.equal(after.outcome, "issued");
  } finally {
    python.kill();
    await python.status;
    control.close();
    await agent.stop("SIGTERM");
    await emu.close();
  }
  emu.assertHealthy();
}
