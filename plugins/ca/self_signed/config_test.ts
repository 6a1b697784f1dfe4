import assert from "node:assert/strict";
import { parseSelfSignedConfig } from "./config.ts";

Deno.test("parseSelfSignedConfig", async (t) => {
  await t.step("defaults: the Go agent's CA (RSA-2048, 10 years, CN Camblet root CA)", () => {
    const r = parseSelfSignedConfig({ caPemPath: "/etc/camblet/ca.pem" });
    assert.ok(r.ok);
    assert.deepEqual(r.value, {
      caPemPath: "/etc/camblet/ca.pem",
      keySize: 2048,
      commonName: "Camblet root CA",
      rootTtlMs: 87_600 * 3_600_000,
      maxCertTtlMs: 168 * 3_600_000,
      backdateMs: 120_000,
      rotateBeforeMs: 720 * 3_600_000,
      autoRotate: true,
      watch: true,
    });
  });

  await t.step("every problem at once, unknown keys named", () => {
    const r = parseSelfSignedConfig({
      keySize: 1024,
      maxCertTtl: "-1h",
      intermediate: { ttl: "x" },
      extra: 1,
    });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(r.problems.map((p) => p.field), [
      "caPemPath",
      "keySize",
      "maxCertTtl",
      "intermediate",
      "extra",
    ]);
  });

  await t.step("intermediate: true takes defaults", () => {
    const r = parseSelfSignedConfig({ caPemPath: "x", intermediate: true });
    assert.ok(r.ok && r.value.intermediate?.commonName === "Camblet intermediate CA");
  });
});
