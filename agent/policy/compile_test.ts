import assert from "node:assert/strict";
import { canonicalContent, compilePolicies } from "./compile.ts";
import { canonicalJson } from "./content_id.ts";
import type { PolicyInput, PolicySource } from "./source.ts";

function src(file: string, item: number, policy: PolicyInput): PolicySource {
  return { file, item, line: item * 3 + 1, policy };
}
const cert = (workloadID: string) => ({ workloadID });

Deno.test("compilePolicies", async (t) => {
  await t.step("writes the protojson shape: positions, ids, expanded selectors", () => {
    const { payload, provenance } = compilePolicies([
      src("a.yaml", 0, {
        selectors: [[["process:name", ["curl"]], ["destination:port", ["8000", "8080"]]]],
        certificate: { workloadID: "curl", ttl: "3600s" },
        connection: { mtls: "STRICT" },
      }),
    ]);
    const [p] = payload.policies;
    assert.deepEqual(Object.keys(p!), ["position", "id", "selectors", "certificate", "connection"]);
    assert.equal(p!.position, 0);
    assert.deepEqual(p!.selectors, [
      { "process:name=curl": true, "destination:port=8000": true },
      { "process:name=curl": true, "destination:port=8080": true },
    ]);
    assert.deepEqual(provenance[p!.id], { file: "a.yaml", item: 0, line: 1 });
  });
  await t.step("orders by specificity, then file and item, whatever the input order", () => {
    const sources = [
      src("b.yaml", 0, { selectors: [[["a", ["1"]]]], certificate: cert("b0") }),
      src("a.yaml", 1, { selectors: [[["x", ["1"]]]], certificate: cert("a1") }),
      src("a.yaml", 0, { selectors: [[]], certificate: cert("a0") }),
      src("c.yaml", 0, { selectors: [[["a", ["1"]], ["b", ["2"]]]], certificate: cert("c0") }),
    ];
    const order = (s: PolicySource[]) =>
      compilePolicies(s).payload.policies.map((p) => [p.position, p.certificate.workloadID]);
    const expected = [[0, "a1"], [1, "c0"], [2, "b0"], [3, "a0"]];
    assert.deepEqual(order(sources), expected);
    assert.deepEqual(order([...sources].reverse()), expected);
  });
  await t.step("numbers egress entries per policy in written order, with their own ids", () => {
    const { payload, provenance } = compilePolicies([src("a.yaml", 0, {
      selectors: [[["p", ["1"]]]],
      certificate: cert("parent"),
      egress: [
        { line: 9, selectors: [[["app", ["db"]]]], certificate: cert("e0") },
        { selectors: [[["app", ["db"]]]], certificate: cert("e0") },
      ],
    })]);
    const [p] = payload.policies;
    assert.deepEqual(p!.egress!.map((e) => [e.position, Object.keys(e)]), [
      [0, ["position", "id", "selectors", "certificate"]],
      [1, ["position", "id", "selectors", "certificate"]],
    ]);
    // Identical entries still get distinct ids (the index is part of an egress id).
    assert.notEqual(p!.egress![0]!.id, p!.egress![1]!.id);
    assert.deepEqual(provenance[p!.egress![0]!.id], {
      file: "a.yaml",
      item: 0,
      line: 9,
      egress: 0,
    });
    assert.deepEqual(provenance[p!.egress![1]!.id], {
      file: "a.yaml",
      item: 0,
      line: 1,
      egress: 1,
    });
  });
  await t.step("ids depend on content only", () => {
    const body: PolicyInput = {
      selectors: [[["a", ["1"]], ["b", ["2"]]], [["c", ["3"]]]],
      certificate: { workloadID: "w", ttl: "60s" },
    };
    const id = (file: string, item: number, p: PolicyInput) =>
      compilePolicies([src(file, item, p)]).payload.policies[0]!.id;
    const base = id("a.yaml", 0, body);
    assert.equal(id("z/other.yaml", 7, body), base);
    // Selector map order and key order do not matter.
    assert.equal(
      id("a.yaml", 0, { ...body, selectors: [[["c", ["3"]]], [["b", ["2"]], ["a", ["1"]]]] }),
      base,
    );
    const variants: PolicyInput[] = [
      { ...body, certificate: { workloadID: "w", ttl: "61s" } },
      { ...body, certificate: { workloadID: "w2", ttl: "60s" } },
      { ...body, connection: { mtls: "DISABLE" as const } },
      { ...body, selectors: [[["a", ["1"]]]] },
      { ...body, egress: [{ selectors: [[]], certificate: cert("e") }] },
    ];
    for (const changed of variants) assert.notEqual(id("a.yaml", 0, changed), base);
    // Two policies with the same certificate but different selectors differ (the Go agent's
    // certificate-only ids collided).
    assert.notEqual(
      id("a.yaml", 0, { selectors: [[["x", ["1"]]]], certificate: cert("same") }),
      id("a.yaml", 0, { selectors: [[["y", ["1"]]]], certificate: cert("same") }),
    );
  });
  await t.step("an identical policy is a warning; the first keeps the provenance", () => {
    const p: PolicyInput = { selectors: [[["a", ["1"]]]], certificate: cert("w") };
    const { payload, provenance, warnings } = compilePolicies([
      src("b.yaml", 0, p),
      src("a.yaml", 2, p),
    ]);
    assert.equal(payload.policies.length, 2);
    assert.equal(provenance[payload.policies[0]!.id]!.file, "a.yaml");
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.message, /identical to a\.yaml item 2/);
  });
  await t.step("is deterministic", () => {
    const sources = Array.from({ length: 50 }, (_, i) =>
      src(`f${i % 7}.yaml`, i, {
        selectors: [[
          ["k", [String(i % 5)]],
          ...(i % 2 ? [["x", ["1"]] as [string, string[]]] : []),
        ]],
        certificate: cert(`w${i}`),
      }));
    assert.equal(
      JSON.stringify(compilePolicies(sources)),
      JSON.stringify(compilePolicies([...sources].reverse())),
    );
  });
});

Deno.test("canonicalContent is canonicalJson of the content, selector sets sorted", () => {
  const main = {
    selectors: [{ "z=1": true as const, "a=1": true as const }, { "b=2": true as const }],
    certificate: { workloadID: "w", ttl: "60s", dnsNames: ["x.test"] },
    connection: {
      passthrough: true,
      mtls: "STRICT" as const,
      allowedSPIFFEIDs: ["spiffe://t/a"],
      http: true,
    },
  };
  const egress = [{ selectors: [{}], certificate: { workloadID: "e" } }];
  const naive = {
    selectors: [["a=1", "z=1"], ["b=2"]],
    certificate: main.certificate,
    connection: main.connection,
    egress: [{ selectors: [[]], certificate: { workloadID: "e" }, connection: {} }],
  };
  assert.equal(JSON.stringify(canonicalContent(main, egress)), canonicalJson(naive));
});
