import assert from "node:assert/strict";
import { isAuditPath, readLayout } from "./_layout.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("readLayout: audit/ files are delivered as bytes; their wasm is not a second issuance policy", () => {
  const l = readLayout([
    { path: "policies/web.yaml", data: enc("[]") },
    { path: "audit/rules.rego", data: enc("package camblet.audit") },
    { path: "audit/lib/lib.rego", data: enc("package camblet.audit.lib") },
    { path: "audit/policy.wasm", data: new Uint8Array([0, 97, 115, 109]) },
    { path: "audit/.hidden.rego", data: enc("x") },
    { path: "policy.wasm", data: new Uint8Array([0, 97, 115, 109]) },
    {
      path: ".manifest",
      data: enc(JSON.stringify({
        revision: "r1",
        wasm: [{ entrypoint: "camblet/audit/violations", module: "/audit/policy.wasm" }],
      })),
    },
  ], 1 << 20);
  assert.deepEqual(l.files.map((f) => f.path), ["policies/web.yaml"]);
  assert.deepEqual(l.audit?.files.map((f) => f.path), [
    "audit/lib/lib.rego",
    "audit/policy.wasm",
    "audit/rules.rego",
  ]);
  assert.equal(l.opa?.path, "policy.wasm", "the issuance policy is the top-level one");
  assert.equal(readLayout([{ path: "policies/a.yaml", data: enc("[]") }], 1024).audit, undefined);
});

Deno.test("isAuditPath: below audit/, no dot segments", () => {
  assert.ok(isAuditPath("audit/x.rego"));
  assert.ok(!isAuditPath("audit"));
  assert.ok(!isAuditPath("audit/.git/x"));
  assert.ok(!isAuditPath("policies/audit/x.rego"));
});
