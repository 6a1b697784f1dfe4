import assert from "node:assert/strict";
import { readTranscript, replayTranscript } from "./replay.ts";
import { openHarness } from "../../tests/fakes/link_harness.ts";

const DIR = new URL("../../tests/testdata/camblet-driver/transcripts/", import.meta.url);

Deno.test("captured transcripts replay and every answer passes the module's checks", async (t) => {
  const names = [...Deno.readDirSync(DIR)].map((e) => e.name).filter((n) => n.endsWith(".jsonl"))
    .sort();
  assert.ok(names.length >= 10, `transcripts found: ${names.join(", ")}`);
  const h = await openHarness({ trustDomain: "acme.test" });
  try {
    for (const name of names) {
      await t.step(name, async () => {
        const entries = await readTranscript(new URL(name, DIR));
        const { sent, results } = await replayTranscript(h.emu, entries);
        const requests = entries.filter((e) =>
          e.dir === "kernel->agent" && e.raw.includes('"is_message":false')
        );
        assert.equal(sent, entries.filter((e) => e.dir === "kernel->agent").length);
        const answered = results.filter((r) => r.id && requests.some((q) => q.raw.includes(r.id)));
        assert.equal(answered.length, requests.length, "every request with an id got a result");
        for (const r of answered) {
          if (r.command === "augment") assert.equal(r.outcome, "answered", `${r.id}: ${r.outcome}`);
          if (r.command === "csr_sign") {
            assert.equal(
              r.outcome,
              "issued",
              `${r.id}: ${r.outcome} ${r.check?.problems.join("; ")}`,
            );
            assert.match(r.check?.spiffeId ?? "", /^spiffe:\/\/acme\.test\/(web|curl)$/);
          }
          assert.ok(r.latencyMs < 1000, `${r.command} ${r.id} answered in ${r.latencyMs} ms`);
        }
        const logs = entries.filter((e) =>
          e.dir === "kernel->agent" && e.raw.includes('"command":"log"')
        );
        if (logs.length > 0) {
          for (let i = 0; i < 100 && h.logs.length < logs.length; i++) {
            await new Promise((r) => setTimeout(r, 10));
          }
          assert.ok(
            h.logs.length >= logs.length,
            `${h.logs.length} of ${logs.length} log lines delivered`,
          );
        }
        h.logs.length = 0;
        h.emu.assertHealthy();
      });
    }
  } finally {
    await h.close();
  }
  h.emu.assertHealthy();
});
