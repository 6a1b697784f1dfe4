import assert from "node:assert/strict";
import type {
  KernelEgress,
  KernelPayloads,
  KernelPolicy,
  LoadSdInfo,
} from "../../driver/payloads.ts";
import { evaluatePolicies, matchConnection } from "./match.ts";

function policy(
  id: string,
  position: number,
  selectors: KernelPolicy["selectors"],
  extra: Partial<KernelPolicy> = {},
): KernelPolicy {
  return { id, position, selectors, certificate: { workloadID: id }, ...extra };
}

function egress(
  id: string,
  position: number,
  selectors: KernelEgress["selectors"],
  extra: Partial<KernelEgress> = {},
): KernelEgress {
  return { id, position, selectors, certificate: { workloadID: id }, ...extra };
}

function payloads(policies: KernelPolicy[], sd: LoadSdInfo = {}): KernelPayloads {
  return {
    load_config: { trust_domain: "acme.test" },
    load_sd_info: sd,
    load_policies: { policies },
  };
}

const SD: LoadSdInfo = { "10.0.0.2:8000": { labels: ["app=web", "tier=front"] } };
const OUT = {
  direction: "output",
  destinationIp: "10.0.0.2",
  destinationPort: 8000,
  sourceIp: "10.0.0.1",
  sourcePort: 40000,
} as const;

Deno.test("matcher: the kernel's rules, one by one", async (t) => {
  await t.step("a policy matches when one selector set is a subset of the labels", () => {
    const p = payloads([policy("curl", 0, [{ "process:name=curl": true, "process:uid=0": true }])]);
    const hit = matchConnection(p, {
      labels: ["process:name=curl", "process:uid=0"],
      direction: "input",
    });
    assert.equal(hit.intercepted, true);
    assert.equal(hit.policy?.id, "curl");
    const miss = matchConnection(p, { labels: ["process:name=curl"], direction: "input" });
    assert.equal(miss.intercepted, false);
    assert.equal(miss.reason, "no-policy");
  });

  await t.step("any of the selector sets may match (sets are OR, keys are AND)", () => {
    const p = payloads([policy("x", 0, [{ "a=1": true, "b=1": true }, { "c=1": true }])]);
    const r = matchConnection(p, { labels: ["c=1"], direction: "input" });
    assert.equal(r.policy?.id, "x");
    assert.deepEqual(r.matchedSelector, { "c=1": true });
    assert.equal(matchConnection(p, { labels: ["a=1"], direction: "input" }).intercepted, false);
  });

  await t.step("an empty selector set matches every connection", () => {
    const p = payloads([policy("all", 0, [{}])]);
    assert.equal(matchConnection(p, { labels: [], direction: "input" }).intercepted, true);
  });

  await t.step("a policy without selector sets matches nothing", () => {
    const p = payloads([policy("none", 0, [])]);
    assert.equal(matchConnection(p, { labels: ["a=1"], direction: "input" }).intercepted, false);
  });

  await t.step("only label keys count, not their values in the kernel's object", () => {
    const p = payloads([policy("k", 0, [{ "a=1": true }])]);
    const r = evaluatePolicies(p, { labels: { "a=1": false } });
    assert.equal(r.intercepted, true);
  });

  await t.step("the kernel adds direction, source and destination labels", () => {
    const p = payloads([
      policy("in", 0, [{ "direction=input": true, "destination:port=8000": true }]),
    ]);
    const r = matchConnection(p, { labels: [], direction: "input", destinationPort: 8000 });
    assert.equal(r.policy?.id, "in");
    assert.ok(r.input.labels.includes("direction=input"));
    const out = matchConnection(p, { labels: [], direction: "output", destinationPort: 8000 });
    assert.equal(out.intercepted, false, "direction=output must not match direction=input");
  });

  await t.step("IPs are printed as the kernel prints them (IPv6 fully expanded)", () => {
    const p = payloads([
      policy("v6", 0, [{ "destination:ip=0000:0000:0000:0000:0000:0000:0000:0001": true }]),
    ]);
    const r = matchConnection(p, { labels: [], direction: "input", destinationIp: "::1" });
    assert.equal(r.policy?.id, "v6");
    const v4 = matchConnection(p, { labels: [], direction: "input", destinationIp: "127.0.0.1" });
    assert.ok(v4.input.labels.includes("destination:ip=127.0.0.1"));
    const mapped = matchConnection(p, {
      labels: [],
      direction: "input",
      sourceIp: "::ffff:127.0.0.1",
    });
    assert.ok(mapped.input.labels.includes("source:ip=0000:0000:0000:0000:0000:ffff:7f00:0001"));
    assert.throws(
      () => matchConnection(p, { labels: [], direction: "input", sourceIp: "10.0.0" }),
      /Cannot read IP address "10.0.0"/,
    );
  });

  await t.step("inbound source:port arrives byte-swapped; outbound does not", () => {
    const p = payloads([policy("any", 0, [{}])], SD);
    const r = matchConnection(p, { labels: [], direction: "input", sourcePort: 37118 });
    assert.ok(r.input.labels.includes("source:port=65168"), r.input.labels.join(","));
    assert.match(r.notes.join("\n"), /byte-swapped.*37118.*65168/);
    const o = matchConnection(p, { labels: [], ...OUT, sourcePort: 37118 });
    assert.ok(o.input.labels.includes("source:port=37118"));
  });

  await t.step("outbound to a destination outside the service table is not intercepted", () => {
    const p = payloads([policy("any", 0, [{}])], SD);
    const r = matchConnection(p, { labels: [], ...OUT, destinationIp: "10.0.0.3" });
    assert.equal(r.intercepted, false);
    assert.equal(r.reason, "no-service");
    assert.deepEqual(r.service?.tried, ["10.0.0.3", "10.0.0.3:8000"]);
    assert.equal(matchConnection(p, { labels: [], ...OUT }).intercepted, true);
  });

  await t.step("the service table is looked up by bare IP first, then ip:port", () => {
    const sd: LoadSdInfo = {
      "10.0.0.2:8000": { labels: ["app=by-port"] },
      "10.0.0.2": { labels: ["app=by-ip"] },
    };
    const p = payloads([
      policy("p", 0, [{}], { egress: [egress("e", 0, [{ "app=by-ip": true }])] }),
    ], sd);
    const r = matchConnection(p, { labels: [], ...OUT });
    assert.equal(r.service?.key, "10.0.0.2");
    assert.deepEqual(r.input.remote?.labels, ["app=by-ip"]);
    assert.equal(r.egress?.id, "e");
  });

  await t.step("IPv6 service keys are fully expanded", () => {
    const sd: LoadSdInfo = {
      "0000:0000:0000:0000:0000:0000:0000:0001:8000": { labels: ["app=v6"] },
    };
    const p = payloads([policy("p", 0, [{}])], sd);
    const r = matchConnection(p, {
      labels: [],
      direction: "output",
      destinationIp: "::1",
      destinationPort: 8000,
    });
    assert.equal(r.service?.key, "0000:0000:0000:0000:0000:0000:0000:0001:8000");
    assert.equal(r.intercepted, true);
  });

  await t.step("egress entries match against the destination service's labels", () => {
    const p = payloads([
      policy("p", 0, [{ "process:name=curl": true }], {
        egress: [
          egress("to-db", 0, [{ "app=db": true }]),
          egress("to-web", 1, [{ "app=web": true }]),
        ],
      }),
    ], SD);
    const r = matchConnection(p, { labels: ["process:name=curl"], ...OUT });
    assert.equal(r.reason, "egress");
    assert.equal(r.egress?.id, "to-web");
    assert.deepEqual(r.matchedEgressSelector, { "app=web": true });
    const plain = r.candidates.find((c) => c.egressId === undefined)!;
    assert.deepEqual(plain.egressMisses, [{ egressId: "to-db", position: 0, missing: ["app=db"] }]);
  });

  await t.step("egress never matches inbound, not even with an empty selector set", () => {
    const p = payloads([policy("p", 0, [{}], { egress: [egress("e", 0, [{}])] })], SD);
    const r = matchConnection(p, { labels: [], direction: "input" });
    assert.equal(r.reason, "policy");
    assert.equal(r.egress, undefined);
    const o = matchConnection(p, { labels: [], ...OUT });
    assert.equal(o.egress?.id, "e", "an empty egress selector matches any service");
  });

  await t.step("egress entries of non-matching policies are never considered", () => {
    const p = payloads([
      policy("other", 0, [{ "process:name=nginx": true }], { egress: [egress("e", 0, [{}])] }),
    ], SD);
    assert.equal(matchConnection(p, { labels: ["process:name=curl"], ...OUT }).intercepted, false);
  });

  await t.step("a match with egress beats a lower-position match without one", () => {
    const p = payloads([
      policy("broad", 0, [{}]),
      policy("specific", 5, [{ "process:name=curl": true }], {
        egress: [egress("to-web", 0, [{ "app=web": true }])],
      }),
    ], SD);
    const r = matchConnection(p, { labels: ["process:name=curl"], ...OUT });
    assert.equal(r.policy?.id, "specific");
    assert.equal(r.egress?.id, "to-web");
    const broad = r.candidates.find((c) => c.policyId === "broad")!;
    assert.equal(broad.verdict, "egress-preferred");
  });

  await t.step("the lowest position wins, whatever the array order", () => {
    const p = payloads([policy("late", 7, [{}]), policy("early", 2, [{}]), policy("mid", 4, [{}])]);
    const r = matchConnection(p, { labels: [], direction: "input" });
    assert.equal(r.policy?.id, "early");
    assert.deepEqual(
      r.candidates.map((c) => [c.policyId, c.verdict]),
      [["early", "chosen"], ["mid", "lower-position"], ["late", "lower-position"]],
    );
  });

  await t.step("then the lowest egress position wins, across policies only by position", () => {
    const p = payloads([
      policy("a", 1, [{}], {
        egress: [egress("a1", 3, [{}]), egress("a0", 1, [{ "tier=front": true }])],
      }),
      policy("b", 2, [{}], { egress: [egress("b0", 0, [{}])] }),
    ], SD);
    const r = matchConnection(p, { labels: [], ...OUT });
    assert.equal(r.egress?.id, "a0");
    const verdicts = Object.fromEntries(
      r.candidates.filter((c) => c.egressId).map((c) => [c.egressId, c.verdict]),
    );
    assert.deepEqual(verdicts, { a0: "chosen", a1: "lower-egress-position", b0: "lower-position" });
  });

  await t.step("egress fields beat the parent's, field by field; absent ones inherit", () => {
    const parent = policy("p", 0, [{}], {
      certificate: { workloadID: "parent", dnsNames: ["p.acme"], ttl: "60s" },
      connection: {
        mtls: "STRICT",
        passthrough: true,
        http: true,
        allowedSPIFFEIDs: ["spiffe://acme.test/p"],
      },
      egress: [egress("e", 0, [{}], {
        certificate: { workloadID: "child", ttl: "30s" },
        connection: { mtls: "DISABLE", http: false },
      })],
    });
    const r = matchConnection(payloads([parent], SD), { labels: [], ...OUT });
    assert.equal(r.workloadID, "child");
    assert.equal(r.ttl, "30s");
    assert.equal(r.mtls, false);
    assert.equal(r.http, false);
    assert.equal(r.passthrough, true, "inherited");
    assert.deepEqual(r.dnsNames, ["p.acme"], "inherited");
    assert.deepEqual(r.allowedSPIFFEIDs, ["spiffe://acme.test/p"], "inherited");
    assert.equal(r.certCacheKey, "acme.test30spe");
  });

  await t.step("with no matching egress entry the parent policy applies", () => {
    const p = payloads([
      policy("p", 0, [{}], { egress: [egress("e", 0, [{ "app=db": true }])] }),
    ], SD);
    const r = matchConnection(p, { labels: [], ...OUT });
    assert.equal(r.reason, "policy");
    assert.equal(r.workloadID, "p");
    assert.equal(r.candidates[0]?.verdict, "chosen");
  });

  await t.step("mTLS is on unless the connection says DISABLE", () => {
    const on = (connection?: KernelPolicy["connection"]) =>
      matchConnection(
        payloads([policy("p", 0, [{}], connection ? { connection } : {})]),
        { labels: [], direction: "input" },
      ).mtls;
    assert.equal(on(), true);
    assert.equal(on({ mtls: "STRICT" }), true);
    assert.equal(on({ passthrough: true }), true);
    assert.equal(on({ mtls: "DISABLE" }), false);
  });

  await t.step("a single-valued label fills its [placeholder]", () => {
    const p = payloads([
      policy("p", 0, [{}], { certificate: { workloadID: "team/[process:uid]/x" } }),
    ]);
    const r = matchConnection(p, { labels: ["process:uid=501"], direction: "input" });
    assert.equal(r.workloadID, "team/501/x");
    assert.equal(r.spiffeId, "spiffe://acme.test/team/501/x");
    assert.deepEqual(r.unresolved, []);
  });

  await t.step("a missing or multi-valued label leaves its placeholder", () => {
    const p = payloads([policy("p", 0, [{}], { certificate: { workloadID: "[a]/[b]" } })]);
    const r = matchConnection(p, { labels: ["b=1", "b=2"], direction: "input" });
    assert.equal(r.workloadID, "[a]/[b]");
    assert.deepEqual(r.unresolved, ["[a]", "[b]"]);
    assert.deepEqual(r.placeholders.map((x) => [x.name, x.problem, x.values]), [
      ["a", "missing", undefined],
      ["b", "ambiguous", ["1", "2"]],
    ]);
  });

  await t.step("kernel-added labels fill placeholders too", () => {
    const p = payloads([
      policy("p", 0, [{}], { certificate: { workloadID: "port-[destination:port]" } }),
    ]);
    const r = matchConnection(p, { labels: [], direction: "input", destinationPort: 8443 });
    assert.equal(r.workloadID, "port-8443");
  });

  await t.step("egress placeholders prefer the service's labels, else the process's", () => {
    const sd: LoadSdInfo = { "10.0.0.2": { labels: ["app=web", "env=a", "env=b"] } };
    const p = payloads([
      policy("p", 0, [{}], {
        egress: [egress("e", 0, [{}], { certificate: { workloadID: "[app]/[env]" } })],
      }),
    ], sd);
    const r = matchConnection(p, { labels: ["app=mine", "env=prod"], ...OUT });
    assert.equal(r.workloadID, "web/prod");
    assert.deepEqual(r.placeholders.map((x) => x.from), ["remote", "labels"]);
  });

  await t.step("the parent's workloadID does not see the service's labels", () => {
    const p = payloads([policy("p", 0, [{}], { certificate: { workloadID: "[app]" } })], SD);
    assert.equal(matchConnection(p, { labels: [], ...OUT }).workloadID, "[app]");
  });

  await t.step("label quirks: split at the first '=', 'x=x' ignored, no '=' means ''", () => {
    const p = payloads([policy("p", 0, [{}], { certificate: { workloadID: "[a]|[x]|[flag]" } })]);
    const r = matchConnection(p, { labels: ["a=b=c", "x=x", "flag"], direction: "input" });
    assert.equal(r.workloadID, "b=c|[x]|");
  });

  await t.step("the SPIFFE ID uses the loaded trust domain", () => {
    const p = payloads([policy("w", 0, [{}])]);
    p.load_config.trust_domain = "other.example";
    assert.equal(
      matchConnection(p, { labels: [], direction: "input" }).spiffeId,
      "spiffe://other.example/w",
    );
  });

  await t.step("trace 'all' lists non-matching policies with what they lack, closest first", () => {
    const p = payloads([
      policy("far", 0, [{ "a=1": true, "b=1": true, "c=1": true }]),
      policy("near", 1, [{ "a=1": true, "z=1": true }, { "y=1": true, "a=9": true, "b=9": true }]),
    ]);
    const r = matchConnection(p, { labels: ["a=1"], direction: "input" }, { trace: "all" });
    assert.deepEqual(r.misses, [
      { policyId: "near", position: 1, missing: ["z=1"] },
      { policyId: "far", position: 0, missing: ["b=1", "c=1"] },
    ]);
    assert.equal(matchConnection(p, { labels: [], direction: "input" }).misses, undefined);
  });
});
