import assert from "node:assert/strict";
import { planRotation, type RotationInput } from "./rotation.ts";

const H = 3_600_000;
const base: RotationInput<{ keepUntil: number; notAfter: number; id: string }> = {
  now: 1000 * H,
  rootNotAfter: 2000 * H,
  rootKeyAvailable: true,
  wantIntermediate: false,
  retired: [],
  rotateBeforeMs: 24 * H,
  maxCertTtlMs: 2 * H,
};

Deno.test("planRotation", async (t) => {
  await t.step("nothing to do for a young root", () => {
    const p = planRotation(base);
    assert.equal(p.action, "none");
    assert.equal(p.reason, "nothing to rotate");
  });

  await t.step("root near expiry rotates; old root kept for the longest leaf", () => {
    const p = planRotation({ ...base, rootNotAfter: base.now + 10 * H });
    assert.equal(p.action, "root");
    assert.match(p.reason, /root expires soon \(10h left\)/);
    assert.equal(p.retireRootUntil, base.now + 2 * H);
  });

  await t.step("a known last leaf bounds how long the old root stays", () => {
    const p = planRotation({ ...base, force: "root", lastIssuedNotAfter: base.now + 30 * 60_000 });
    assert.equal(p.retireRootUntil, base.now + 30 * 60_000);
    const q = planRotation({ ...base, force: "root", rootNotAfter: base.now + H });
    assert.equal(q.retireRootUntil, base.now + H, "never past the old root's own expiry");
  });

  await t.step("retired anchors are kept until keepUntil, then dropped", () => {
    const keep = { id: "keep", keepUntil: base.now + 1, notAfter: base.now + 100 * H };
    const done = { id: "done", keepUntil: base.now, notAfter: base.now + 100 * H };
    const expired = { id: "expired", keepUntil: base.now + H, notAfter: base.now - 1 };
    const p = planRotation({ ...base, retired: [keep, done, expired] });
    assert.deepEqual(p.keep.map((r) => r.id), ["keep"]);
    assert.deepEqual(p.drop.map((r) => r.id), ["done", "expired"]);
  });

  await t.step(
    "intermediate: rotates near expiry, is created when wanted, needs the root key",
    () => {
      assert.equal(
        planRotation({ ...base, intermediateNotAfter: base.now + H }).action,
        "intermediate",
      );
      assert.equal(planRotation({ ...base, wantIntermediate: true }).action, "intermediate");
      const noKey = planRotation({
        ...base,
        rootKeyAvailable: false,
        intermediateNotAfter: base.now + H,
      });
      assert.equal(noKey.action, "none");
      assert.match(noKey.error!, /root's private key is not in the CA file/);
      const forced = planRotation({ ...base, rootKeyAvailable: false, force: "intermediate" });
      assert.equal(forced.action, "none");
      assert.ok(forced.error);
    },
  );

  await t.step("the root goes first when both are due", () => {
    const p = planRotation({
      ...base,
      rootNotAfter: base.now + H,
      intermediateNotAfter: base.now + H,
    });
    assert.equal(p.action, "root");
  });
});
