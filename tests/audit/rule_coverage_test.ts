// Every default audit rule (policies/rego/audit/rules.rego) has a real-command trigger test: the
// native cases, the egress test (native_rules_test.ts) and the container rules
// (docker_rules_test.ts). A rule added without one fails here, naming it.
import assert from "node:assert/strict";
import { skip } from "../_skip.ts";
import { buildRules, opaMissing, RULES_DIR } from "./_rules.ts";
import { DOCKER_RULES, EGRESS_RULE, nativeCases, reportedRules } from "./_triggers.ts";
import { loadRulesBytes } from "../../agent/audit/rules_file.ts";

const rego = await Deno.readTextFile(`${RULES_DIR}/rules.rego`);

function tested(): string[] {
  const env = {
    tmp: "/t",
    etcFile: "/e",
    binFile: "/b",
    logFile: "/l",
    home: "/h",
    modSyscalls: [],
  };
  return [...nativeCases(env).map((c) => c.rule), EGRESS_RULE, ...Object.values(DOCKER_RULES)];
}

Deno.test("every default audit rule has exactly one real-command trigger test", () => {
  const rules = reportedRules(rego);
  const t = tested();
  assert.ok(rules.length >= 17, `rules.rego reports ${rules.length} rules`);
  assert.deepEqual(rules.filter((r, i) => rules.indexOf(r) !== i), [], "rule names repeat");
  assert.deepEqual(t.filter((r, i) => t.indexOf(r) !== i), [], "a rule is tested twice");
  assert.deepEqual(rules.filter((r) => !t.includes(r)), [], "rules without a trigger test");
  assert.deepEqual(t.filter((r) => !rules.includes(r)), [], "tests of rules rules.rego lacks");
  assert.equal(t.length, rules.length);
});

Deno.test({
  name: "every default audit rule declares a filter (a rule without one never sees an event)",
  ignore: skip(opaMissing()),
  async fn() {
    const rules = await loadRulesBytes(await buildRules(), "policies/rego/audit");
    const declared = new Set(rules.filter.groups!.flatMap((g) => g.rules));
    assert.deepEqual(reportedRules(rego).filter((r) => !declared.has(r)), []);
    assert.deepEqual([...declared].filter((r) => !reportedRules(rego).includes(r)), []);
  },
});
