import assert from "node:assert/strict";
import { planToken } from "./token_plan.ts";

const base = { obtainedAt: 0, ttlMs: 60_000, renewable: true, canLogin: false };

Deno.test("planToken", async (t) => {
  await t.step("renews at half its TTL, not before", () => {
    assert.equal(planToken({ ...base, now: 29_000 }).action, "none");
    assert.equal(planToken({ ...base, now: 30_000 }).action, "renew");
  });
  await t.step("a token without TTL is left alone", () => {
    assert.equal(planToken({ ...base, ttlMs: 0, now: 1e12 }).action, "none");
  });
  await t.step("not renewable: log in again when possible, else say so", () => {
    assert.equal(
      planToken({ ...base, renewable: false, canLogin: true, now: 31_000 }).action,
      "login",
    );
    const p = planToken({ ...base, renewable: false, now: 31_000 });
    assert.equal(p.action, "none");
    assert.match(p.problem ?? "", /cannot be renewed/);
  });
  await t.step("refused (403): log in again, or report it for a static token", () => {
    assert.equal(planToken({ ...base, canLogin: true, forbidden: true, now: 1 }).action, "login");
    assert.match(
      planToken({ ...base, forbidden: true, now: 1 }).problem ?? "",
      /refuses the token/,
    );
  });
  await t.step("expired: login or report", () => {
    assert.equal(planToken({ ...base, canLogin: true, now: 61_000 }).action, "login");
    assert.match(planToken({ ...base, now: 61_000 }).problem ?? "", /expired/);
  });
  await t.step("after failures: back off; a failed renewal with a login method logs in", () => {
    const f = { ...base, canLogin: true, failures: 1, lastFailureAt: 30_000 };
    assert.equal(planToken({ ...f, now: 32_000 }).action, "none");
    assert.equal(planToken({ ...f, now: 35_000 }).action, "login");
    const g = { ...base, failures: 3, lastFailureAt: 30_000 };
    assert.equal(planToken({ ...g, now: 49_000 }).action, "none", "20 s backoff after 3 failures");
    assert.equal(planToken({ ...g, now: 50_000 }).action, "renew");
  });
});
