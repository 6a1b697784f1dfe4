import assert from "node:assert/strict";
import { decideIssuance, type DecisionInput } from "./decide.ts";
import type { Assignable } from "../policy/assignable.ts";

const H = 3_600_000;
const web: Assignable = {
  spiffeId: "spiffe://acme.test/web",
  workloadID: "web",
  dnsNames: ["web.acme.test"],
  ttl: "3600s",
  policyId: "p1",
};
const webLong: Assignable = { ...web, ttl: "7200s", policyId: "p2", egressId: "e1" };
const base: DecisionInput = {
  names: { uris: ["spiffe://acme.test/web"], dnsNames: [], others: [] },
  trustDomain: "acme.test",
  candidates: (id) => [web, webLong].filter((a) => a.spiffeId === id),
  defaultTtlMs: 24 * H,
  caMaxTtlMs: 168 * H,
};

Deno.test("decideIssuance", async (t) => {
  await t.step("issues with the requested TTL under the first entry whose cap allows it", () => {
    assert.deepEqual(decideIssuance({ ...base, requestedTtl: "3600s" }), {
      ok: true,
      spiffeId: "spiffe://acme.test/web",
      dnsNames: [],
      ttlMs: H,
      clamped: false,
      policyId: "p1",
    });
    const long = decideIssuance({ ...base, requestedTtl: "7200s" });
    assert.ok(long.ok);
    assert.equal(long.policyId, "p2");
    assert.equal(long.egressId, "e1");
  });

  await t.step("no TTL requested: the entry's cap; no ttl in policy: the default", () => {
    const r = decideIssuance(base);
    assert.ok(r.ok && r.ttlMs === H);
    const d = decideIssuance({
      ...base,
      candidates:
        () => [{ spiffeId: web.spiffeId, workloadID: "web", dnsNames: [], policyId: "p3" }],
    });
    assert.ok(d.ok && d.ttlMs === 24 * H);
  });

  await t.step("the CA maximum clamps", () => {
    const r = decideIssuance({ ...base, requestedTtl: "3600s", caMaxTtlMs: 60_000 });
    assert.ok(r.ok && r.ttlMs === 60_000 && r.clamped);
  });

  await t.step("refusals name the value", () => {
    const cases: [Partial<DecisionInput>, string, RegExp][] = [
      [{ requestedTtl: "7201s" }, "ttl_above_cap", /TTL "7201s" is above the cap of 7200s/],
      [{ requestedTtl: "0s" }, "bad_ttl", /TTL "0s" is not a positive duration/],
      [{ names: { uris: [], dnsNames: [], others: [] } }, "uri_san_count", /0 URI SANs/],
      [
        { names: { uris: ["spiffe://acme.test/web"], dnsNames: ["x.y"], others: [] } },
        "dns_not_allowed",
        /"x\.y" are not all allowed .*allowed: "web\.acme\.test"/,
      ],
      [
        { names: { uris: ["spiffe://acme.test/a/../b"], dnsNames: [], others: [] } },
        "not_spiffe_id",
        /is not a SPIFFE ID/,
      ],
      [
        { names: { uris: ["spiffe://acme.test/db"], dnsNames: [], others: [] } },
        "not_assignable",
        /no loaded policy assigns "spiffe:\/\/acme\.test\/db"/,
      ],
      [
        { names: { uris: ["spiffe://acme.test/web"], dnsNames: [], others: ["email:a@b"] } },
        "unexpected_san",
        /email:a@b/,
      ],
    ];
    for (const [over, reason, detail] of cases) {
      const r = decideIssuance({ ...base, ...over });
      assert.equal(r.ok, false);
      if (r.ok) continue;
      assert.equal(r.reason, reason);
      assert.match(r.detail, /^Cannot sign CSR: /);
      assert.match(r.detail, detail);
    }
  });
});
