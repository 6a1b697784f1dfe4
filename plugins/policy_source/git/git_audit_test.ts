// A git tree's audit/ directory is delivered with the policies (bytes, for the agent to compile),
// and a commit changing only the rules is a new delivery.
import assert from "node:assert/strict";
import { join } from "node:path";
import { GitSource, parseGitSourceConfig } from "./git_source.ts";
import { GitRemote } from "../../../tests/sources/_git_repo.ts";

const WEB = "- selectors: [{process:name: web}]\n  certificate: {workloadID: web}\n";
const RULE = "package camblet.audit\n";

Deno.test("git source delivers audit/ with the policies; a rules-only commit is a new delivery", async () => {
  const remote = await GitRemote.create();
  await remote.commit({
    "deploy/policies/web.yaml": WEB,
    "deploy/audit/rules.rego": RULE,
    "deploy/audit/lib/lib.rego": RULE,
    "deploy/audit/.hidden.rego": RULE,
    "audit/outside.rego": RULE,
  }, "first");
  const parsed = parseGitSourceConfig({ url: remote.url, ref: "main", dir: "deploy" });
  assert.ok(parsed.ok);
  const src = new GitSource(parsed.value, join(remote.root, "cache"));
  try {
    const r = await src.check();
    assert.ok(r.kind === "delivery", JSON.stringify(r));
    assert.deepEqual(r.delivery.files.map((f) => f.path), ["policies/web.yaml"]);
    assert.deepEqual(r.delivery.audit?.files.map((f) => f.path), [
      "audit/lib/lib.rego",
      "audit/rules.rego",
    ]);
    assert.equal(new TextDecoder().decode(r.delivery.audit!.files[1]!.data), RULE);
    const next = await remote.commit({ "deploy/audit/rules.rego": RULE + "# v2\n" }, "rules");
    const r2 = await src.check();
    assert.ok(r2.kind === "delivery" && r2.delivery.revision === next);
    assert.match(new TextDecoder().decode(r2.delivery.audit!.files[1]!.data), /v2/);
  } finally {
    await src.dispose();
    await remote.remove();
  }
});
