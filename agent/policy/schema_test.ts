import assert from "node:assert/strict";
import {
  LABEL_KEY,
  policySchema,
  selectorValueMessage,
  serviceSchema,
  ttlProblem,
} from "./schema.ts";

Deno.test("ttlProblem accepts Go durations longer than zero", () => {
  for (const ok of ["3600s", "1h", "90m", "1h30m", "1.5h", "250ms"]) {
    assert.equal(ttlProblem(ok), undefined, ok);
  }
  assert.match(ttlProblem("0s")!, /longer than zero/);
  assert.match(ttlProblem("0")!, /longer than zero/);
  assert.match(ttlProblem("1 hour")!, /Cannot parse duration "1 hour"/);
  assert.match(ttlProblem("")!, /empty/);
});

Deno.test("selectorValueMessage says what is wrong and how to fix it", () => {
  assert.match(selectorValueMessage(true), /boolean true.*quote it: "true"/);
  assert.match(selectorValueMessage(null), /is null/);
  assert.match(selectorValueMessage({ a: 1 }), /is a map/);
  assert.match(selectorValueMessage([1, [2]]), /list item 1 is a list/);
  assert.match(selectorValueMessage([]), /empty list/);
});

Deno.test("policySchema", async (t) => {
  const base = { selectors: [{}], certificate: { workloadID: "w" } };
  await t.step("accepts the minimal policy and the full one", () => {
    assert.ok(policySchema.safeParse(base).success);
    assert.ok(
      policySchema.safeParse({
        selectors: [{ "process:uid": [501, "1001"], "process:name": "curl" }],
        certificate: { workloadID: "a/[process:uid]", dnsNames: ["a.b"], ttl: "1h" },
        connection: {
          mtls: "STRICT",
          passthrough: true,
          allowedSPIFFEIDs: ["spiffe://t/x"],
          http: true,
        },
        egress: [{ selectors: [{ app: "x" }], certificate: { workloadID: "e" } }],
      }).success,
    );
  });
  await t.step("is strict at every level", () => {
    for (
      const bad of [
        { ...base, extra: 1 },
        { ...base, certificate: { workloadID: "w", extra: 1 } },
        { ...base, connection: { extra: 1 } },
        { ...base, egress: [{ ...base, egress: [] }] },
      ]
    ) {
      const r = policySchema.safeParse(bad);
      assert.ok(!r.success);
      assert.equal(r.error.issues[0]!.code, "unrecognized_keys");
    }
  });
});

Deno.test("serviceSchema label keys follow the Go agent's regex", () => {
  for (const ok of ["app", "app:label", "k8s:pod:name", "a_b-c", "a"]) {
    assert.ok(LABEL_KEY.test(ok), ok);
  }
  for (const bad of ["-a", "a:", "a b", "", "a=b"]) assert.ok(!LABEL_KEY.test(bad), bad);
  const r = serviceSchema.safeParse({
    addresses: [{ address: "::1", port: 1 }],
    labels: { "a=b": "x" },
  });
  assert.ok(!r.success);
});
