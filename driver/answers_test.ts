import assert from "node:assert/strict";
import { augmentAnswer, csrAnswerProblem, taskLabels } from "./answers.ts";
import { syntheticTask } from "./emulator/tasks.ts";
import { readTranscript } from "./emulator/replay.ts";

Deno.test("augmentAnswer keeps name=value labels and reports the rest", () => {
  assert.deepEqual(augmentAnswer(["a=1", "a=1", "b=", "=x", "plain"]), {
    answer: '{"labels":{"a=1":true,"b=":true}}',
    dropped: ["=x", "plain"],
  });
});

Deno.test("taskLabels are what the kernel's task context proves", () => {
  assert.deepEqual(taskLabels(syntheticTask(0)), [
    "process:name=python3",
    "process:uid=1000",
    "process:gid=1000",
    "process:binary:path=/usr/bin/python3.11",
  ]);
});

Deno.test("csrAnswerProblem passes the captured answers and names what breaks the module", async () => {
  const entries = await readTranscript(
    new URL("../tests/testdata/camblet-driver/transcripts/baseline.jsonl", import.meta.url),
  );
  const answers = entries.filter((e) => e.raw.includes('\\"certificate\\"')).map((e) =>
    JSON.parse(e.raw).answer as string
  );
  assert.ok(answers.length >= 2);
  for (const a of answers) assert.equal(csrAnswerProblem(a), undefined);
  const good = JSON.parse(answers[0]!);
  const variant = (f: (o: Record<string, unknown>) => void) => {
    const o = structuredClone(good);
    f(o);
    return csrAnswerProblem(JSON.stringify(o));
  };
  assert.match(variant((o) => delete o["chain"]) ?? "", /^chain: missing/);
  assert.match(
    variant((o) => (o["certificate"] as { raw: string }).raw = "abc") ?? "",
    /certificate\.raw: not standard padded base64/,
  );
  assert.match(variant((o) => o["trust_anchors"] = []) ?? "", /trust_anchors: missing or empty/);
  assert.match(
    variant((o) =>
      (o["trust_anchors"] as { publicKey: unknown }[])[0]!.publicKey = {
        type: "ECDSA",
        EC_Q: "AAAA",
      }
    ) ?? "",
    /RSA_N: missing .* RSA key/,
  );
  assert.match(csrAnswerProblem("error") ?? "", /^not JSON/);
});
