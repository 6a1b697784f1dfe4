import assert from "node:assert/strict";
import { PolicyWorker } from "./compile_worker.ts";
import { compileSet } from "./compile_set.ts";
import { type LabelTarget, parseDelivery } from "./parse_delivery.ts";
import type { PolicyDelivery } from "../../plugins/policy_source/types.ts";

const spec = { id: "file(big)", implicit: false };

function delivery(n: number): PolicyDelivery {
  const text = Array.from(
    { length: n },
    (_, i) =>
      `- selectors: [{process:name: p${i}}]\n  certificate: {workloadID: w${i}}\n` +
      (i === 3 ? "  egress: [{selectors: [{app:label: db}], certificate: {workloadID: e}}]\n" : ""),
  )
    .join("");
  return {
    revision: "r1",
    files: [
      { kind: "policies", path: "a.yaml", text },
      {
        kind: "services",
        path: "s.yaml",
        text: "- addresses: [{address: db.test, port: 5432}]\n  labels: {app:label: db}\n",
      },
    ],
    warnings: [],
  };
}

const resolutions = { addresses: new Map([["db.test", ["10.0.0.7"]]]) };

Deno.test("the policy worker parses and compiles exactly as this thread does", async (t) => {
  // Thresholds at 0: everything goes to the worker.
  const w = new PolicyWorker({ inThreadBytes: 0, inThreadEntries: 0 });
  try {
    const d = delivery(2000);
    const localLabels = new Map<string, LabelTarget>();
    const local = parseDelivery(spec, d, "acme.test", localLabels);
    const labels = new Map<string, LabelTarget>();
    await t.step("parse", async () => {
      const there = await w.parse(spec, d, "acme.test", labels);
      assert.deepEqual(there, local);
      assert.deepEqual([...labels], [...localLabels]);
    });
    await t.step("compile, with hostnames looked up here", async () => {
      const accepted = [{ spec: { ...spec, type: "file" } as never, parsed: local }];
      const there = await w.compile(accepted, "acme.test", resolutions, labels);
      const here = await compileSet(
        accepted,
        "acme.test",
        () => Promise.resolve(resolutions),
        labels,
      );
      assert.deepEqual(there.problems, []);
      assert.deepEqual(there, here);
      assert.deepEqual(there.payloads.load_sd_info, {
        "10.0.0.7:5432": { labels: ["app:label=db"] },
      });
    });
    await t.step("a refused set comes back with its problems only", async () => {
      const bad = parseDelivery(spec, delivery(20), "acme.test", new Map());
      const accepted = [{ spec: { ...spec, type: "file" } as never, parsed: bad }];
      const none = { addresses: new Map<string, readonly string[]>() };
      const there = await w.compile(accepted, "acme.test", none, labels);
      assert.match(there.problems.map((p) => p.message).join("\n"), /db\.test/);
      assert.deepEqual(there.payloads.load_policies.policies, []);
    });
  } finally {
    w.close();
  }
  await t.step("closed, or small: the same work runs here", async () => {
    const d = delivery(3);
    assert.deepEqual(
      await w.parse(spec, d, "acme.test", new Map()),
      parseDelivery(spec, d, "acme.test", new Map()),
    );
  });
});

Deno.test("a delivery the kernel cannot take on its own comes back as its problems only", async () => {
  const w = new PolicyWorker({ inThreadBytes: 0, inThreadEntries: 0 });
  try {
    const long = "x".repeat(700);
    const text = Array.from(
      { length: 2000 },
      (_, i) => `- selectors: [{process:name: p${i}${long}}]\n  certificate: {workloadID: w${i}}\n`,
    ).join("");
    const d: PolicyDelivery = {
      revision: "r1",
      files: [{ kind: "policies", path: "big.yaml", text }],
      warnings: [],
    };
    const parsed = await w.parse(spec, d, "acme.test", new Map());
    assert.deepEqual(parsed.policies, []);
    assert.equal(parsed.problems.length, 1);
    assert.match(
      parsed.problems[0]!.message,
      /^the message would be \d+ bytes; one device write must stay under 1048576/,
    );
    assert.deepEqual(parsed.files.policies, ["file(big):big.yaml"]);
  } finally {
    w.close();
  }
});
