import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { UpstreamHealth } from "./upstream_health.ts";

Deno.test("UpstreamHealth.result: what a CA with an upstream answers to health()", () => {
  const h = new UpstreamHealth({ ca: "vault", upstream: "Vault", log: getLogger(["test"]) });
  assert.deepEqual(h.result(), { ok: true }, "up until a call fails");
  h.failure("read the Vault issuers", new Error("connection refused"), Date.now());
  assert.deepEqual(h.result(), { ok: false, message: "connection refused" });
  h.success();
  assert.deepEqual(h.result(), { ok: true }, "the last error is forgotten once it answers");
});
