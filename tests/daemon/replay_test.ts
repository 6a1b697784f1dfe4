/**
 * The captured kernel sessions, replayed byte for byte against the real agent (identity manager,
 * self-signed CA, attestation): every request is answered in time and every answer passes the
 * emulated module's checks. The captured processes do not exist here, so whether a certificate
 * is issued or refused depends on the labels the agent can prove; both are safe answers.
 */
import assert from "node:assert/strict";
import { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";
import { readTranscript, replayTranscript } from "../../driver/emulator/replay.ts";
import { startAgent } from "../fakes/agent_process.ts";

const DIR = new URL("../../tests/testdata/camblet-driver/transcripts/", import.meta.url);

Deno.test("captured transcripts replay against the agent with every answer accepted", async (t) => {
  const emu = await KernelEmulator.open();
  const agent = await startAgent(emu, { trustDomain: "acme.test" });
  try {
    const names = [...Deno.readDirSync(DIR)].map((e) => e.name).filter((n) => n.endsWith(".jsonl"))
      .sort();
    for (const name of names) {
      await t.step(name, async () => {
        const { results } = await replayTranscript(emu, await readTranscript(new URL(name, DIR)));
        for (
          const r of results.filter((r) => r.command === "augment" || r.command === "csr_sign")
        ) {
          assert.ok(
            ["answered", "issued", "refused"].includes(r.outcome),
            `${r.command} ${r.id}: ${r.outcome}`,
          );
          assert.ok(r.latencyMs < 1000, `${r.command} ${r.id}: ${r.latencyMs} ms`);
          if (r.command === "csr_sign") {
            assert.equal(r.check?.problems.length, 0, r.check?.problems.join("; "));
          }
        }
        emu.assertHealthy();
      });
    }
    assert.equal(await agent.stop(), 0);
  } finally {
    await agent.stop("SIGKILL");
    await emu.close();
  }
  emu.assertHealthy();
});
