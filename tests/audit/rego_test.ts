// The Rego helper library and rule unit tests (policies/rego/audit/*_test.rego) under the real opa.
import assert from "node:assert/strict";
import { skip } from "../_skip.ts";
import { opaTest } from "../peers/opa.ts";
import { opaMissing, RULES_DIR } from "./_rules.ts";

Deno.test({
  name:
    "opa test policies/rego/audit: helpers (named flags, prefixes, spawned_by, in_container) and rules",
  ignore: skip(opaMissing()),
  async fn() {
    const r = await opaTest([RULES_DIR]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /PASS: \d+\/\d+/);
    assert.doesNotMatch(r.stdout, /FAIL/);
  },
});
