import assert from "node:assert/strict";
import type { KernelPayloads, KernelPolicy } from "../../driver/payloads.ts";
import { findAssignable } from "../policy/assignable.ts";
import { findAssignableCached } from "./assignable_cache.ts";

function payloads(policies: KernelPolicy[]): KernelPayloads {
  return { load_config: { trust_domain: "td" }, load_sd_info: {}, load_policies: { policies } };
}

const policies: KernelPolicy[] = [
  {
    position: 0,
    id: "web",
    selectors: [{ "process:name=python3": true, "destination:port=8000": true }],
    certificate: { workloadID: "web/[process:uid]", ttl: "3600s" },
  },
  {
    position: 1,
    id: "free",
    selectors: [{ "process:name=python3": true }],
    certificate: { workloadID: "svc-[destination:port]" },
  },
];

Deno.test("findAssignableCached answers as findAssignable, per payloads and labels", () => {
  const p = payloads(policies);
  const queries = [
    ["process:name=python3", "process:uid=0"],
    ["process:name=python3", "process:uid=7"],
    ["process:name=curl", "process:uid=0"],
  ].flatMap((processLabels) =>
    ["spiffe://td/web/0", "spiffe://td/web/7", "spiffe://td/svc-9000", "spiffe://td/svc-x"].map(
      (spiffeId) => ({ processLabels, spiffeId, trustDomain: "td" }),
    )
  );
  // Twice: the second round is served from the cache.
  for (let round = 0; round < 2; round++) {
    for (const q of queries) assert.deepEqual(findAssignableCached(p, q), findAssignable(p, q));
  }
  const q = { processLabels: ["process:name=python3"], spiffeId: "spiffe://td/svc-9000" };
  assert.equal(findAssignableCached(p, { ...q, trustDomain: "td" }).length, 1);
  assert.equal(findAssignableCached(p, { ...q, trustDomain: "other" }).length, 0);
  // A reload is a new payloads object: what it no longer allows is no longer found.
  const reloaded = payloads(policies.slice(0, 1));
  assert.deepEqual(findAssignableCached(reloaded, { ...q, trustDomain: "td" }), []);
});
