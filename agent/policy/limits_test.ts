import assert from "node:assert/strict";
import type { KernelPayloads } from "../../driver/payloads.ts";
import {
  entryCountProblem,
  estimatePolicyEntries,
  kernelPayloadProblems,
  MAX_MESSAGE_BYTES,
  MAX_POLICY_ENTRIES,
  messageBytes,
  MIN_ENTRY_JSON_BYTES,
} from "./limits.ts";

function payloads(over: Partial<KernelPayloads> = {}): KernelPayloads {
  return {
    load_config: { trust_domain: "acme.corp" },
    load_sd_info: { "127.0.0.1:8000": { labels: ["app=web"] } },
    load_policies: {
      policies: [{ position: 0, id: "x", selectors: [{}], certificate: { workloadID: "w" } }],
    },
    ...over,
  };
}

Deno.test("messageBytes is the size of the device line", () => {
  const payload = { trust_domain: "acme.corp" };
  const line = JSON.stringify({
    command: "load_config",
    code: btoa(JSON.stringify(payload)),
  }) + "\n";
  assert.equal(messageBytes("load_config", payload), line.length);
});

Deno.test("kernelPayloadProblems", async (t) => {
  await t.step("accepts compiled payloads", () => {
    assert.deepEqual(kernelPayloadProblems(payloads()), []);
  });
  await t.step("refuses what would crash or confuse the kernel", () => {
    const bad = payloads({
      load_sd_info: {
        "::1:80": { labels: [] },
        "10.0.0.1:80": { labels: Array.from({ length: 128 }, (_, i) => `l=${i}`) },
      },
      load_policies: {
        policies: [
          { position: 0, id: "", selectors: [], certificate: { workloadID: "" } },
          {
            position: 0,
            id: "b",
            selectors: [],
            certificate: { workloadID: "w" },
            connection: {
              allowedSPIFFEIDs: Array.from({ length: 17 }, (_, i) => `spiffe://t/${i}`),
            },
          },
        ],
      },
    });
    const messages = kernelPayloadProblems(bad).map((p) => `${p.source}: ${p.message}`);
    assert.deepEqual(messages, [
      "load_policies: policy 0: id is empty",
      "load_policies: policy 0: certificate.workloadID is empty",
      "load_policies: policy 0: position must be a unique whole number",
      "load_policies: policy 0: 17 allowed SPIFFE IDs; the kernel holds 16",
      'load_sd_info: key "::1:80" is not in the kernel\'s address form',
      'load_sd_info: "10.0.0.1:80" has 128 labels; the kernel holds 127',
    ]);
  });
  await t.step("refuses a message larger than one safe device write", () => {
    const policies = Array.from({ length: 4000 }, (_, i) => ({
      position: i,
      id: crypto.randomUUID(),
      selectors: [{
        [`process:name=worker-${i}`]: true as const,
        "direction=input": true as const,
      }],
      certificate: { workloadID: `team/worker-${i}`, ttl: "3600s" },
      connection: { allowedSPIFFEIDs: ["spiffe://acme.corp/some/long/client/identity"] },
    }));
    const problems = kernelPayloadProblems(payloads({ load_policies: { policies } }));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.source, "load_policies");
    assert.match(problems[0]!.message, new RegExp(`must stay under ${MAX_MESSAGE_BYTES}`));
  });
});

Deno.test("policy entry estimates bound the load_policies message from below", async (t) => {
  const { compilePayloads } = await import("./payloads.ts");
  const { parsePolicyFile } = await import("./parse_policy.ts");
  const compiled = (text: string) => {
    const r = parsePolicyFile("p.yaml", text, { trustDomain: "acme.test" });
    assert.deepEqual(r.problems, []);
    return compilePayloads({
      trustDomain: "acme.test",
      policies: r.policies,
      services: [],
      resolutions: { addresses: new Map() },
    }).payloads.load_policies.policies;
  };
  await t.step("the smallest policy and egress entries are not below the bound", () => {
    const [p] = compiled(
      "- selectors: [{}]\n  certificate: {workloadID: a}\n" +
        "  egress: [{selectors: [{}], certificate: {workloadID: b}}]\n",
    );
    assert.ok(p);
    const { egress, ...main } = p;
    assert.ok(JSON.stringify(main).length + 1 >= MIN_ENTRY_JSON_BYTES, JSON.stringify(main));
    assert.ok(JSON.stringify(egress![0]).length + 1 >= MIN_ENTRY_JSON_BYTES);
  });
  await t.step("the text estimate counts entries, not comments", () => {
    const text = "# certificate: {workloadID: old}\n" +
      "- selectors: [{a: b}]\n  certificate:\n    workloadID: w\n" +
      '  egress: [{"selectors": [{}], "certificate": {"workloadID": "e"}}]\n';
    assert.equal(estimatePolicyEntries(text), 2);
    assert.equal(compiled(text).flatMap((p) => [p, ...(p.egress ?? [])]).length, 2);
    assert.equal(estimatePolicyEntries('[{"selectors":[{}],"certificate":{"workloadID":"a"}}]'), 1);
    assert.equal(estimatePolicyEntries("[]"), 0);
  });
  await t.step("a set past the bound cannot fit; the bound is sound", () => {
    assert.equal(entryCountProblem(MAX_POLICY_ENTRIES), undefined);
    assert.match(
      entryCountProblem(94_000)!,
      /^94000 policy and egress entries would take at least \d+ bytes/,
    );
    // The bound is a real limit: MAX_POLICY_ENTRIES + 1 of the smallest entries do not fit.
    const text = "- selectors: [{}]\n  certificate: {workloadID: a}\n".repeat(
      MAX_POLICY_ENTRIES + 1,
    );
    const r = parsePolicyFile("p.yaml", text, { trustDomain: "acme.test" });
    const c = compilePayloads({
      trustDomain: "acme.test",
      policies: r.policies,
      services: [],
      resolutions: { addresses: new Map() },
    });
    assert.match(c.problems.map((p) => p.message).join("\n"), /one device write must stay under/);
  });
});
