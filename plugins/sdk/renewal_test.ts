import assert from "node:assert/strict";
import { planCaRenewal } from "./renewal.ts";

const H = 3_600_000;

Deno.test("planCaRenewal", async (t) => {
  await t.step("due at half-life, with the time left", () => {
    const early = planCaRenewal({ now: 11 * H, notBefore: 0, notAfter: 24 * H });
    assert.deepEqual([early.renew, early.nextCheckAt, early.timeLeftMs], [false, 12 * H, 13 * H]);
    const due = planCaRenewal({ now: 12 * H, notBefore: 0, notAfter: 24 * H });
    assert.equal(due.renew, true);
    assert.match(due.reason, /half of its life passed \(12h left\)/);
  });
  await t.step("at once when the upstream issuer changed", () => {
    const p = planCaRenewal({ now: H, notBefore: 0, notAfter: 24 * H, upstreamChanged: true });
    assert.deepEqual([p.renew, p.reason], [true, "the upstream issuer changed"]);
  });
  await t.step("backs off after failures, capped", () => {
    const f = { notBefore: 0, notAfter: 24 * H, lastFailureAt: 13 * H };
    assert.equal(planCaRenewal({ ...f, now: 13 * H + 4_000, failures: 1 }).renew, false);
    assert.equal(planCaRenewal({ ...f, now: 13 * H + 5_000, failures: 1 }).renew, true);
    const capped = planCaRenewal({ ...f, now: 13 * H + 299_000, failures: 30 });
    assert.deepEqual([capped.renew, capped.nextCheckAt], [false, 13 * H + 300_000]);
  });
  await t.step("expired: still tries, and says so", () => {
    const p = planCaRenewal({ now: 25 * H, notBefore: 0, notAfter: 24 * H });
    assert.deepEqual([p.renew, p.expired, p.timeLeftMs, p.reason], [true, true, 0, "it expired"]);
  });
});
