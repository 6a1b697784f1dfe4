import assert from "node:assert/strict";
import { REPO_ROOT, runCli } from "./_run.ts";

Deno.test("schema prints the committed JSON Schema of each format", async (t) => {
  for (const name of ["policy", "service"]) {
    await t.step(name, async () => {
      const r = await runCli(["schema", name]);
      assert.equal(r.code, 0, r.stderr);
      const committed = await Deno.readTextFile(`${REPO_ROOT}policies/schema/${name}.schema.json`);
      assert.equal(
        r.stdout,
        committed,
        `policies/schema/${name}.schema.json is stale; run: deno task start schema --write policies/schema`,
      );
      const schema = JSON.parse(r.stdout);
      assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
      assert.equal(schema.type, "array");
      assert.equal(schema.items.additionalProperties, false);
    });
  }
});

Deno.test("schema --write writes every format", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await runCli(["schema", "--write", dir]);
    assert.equal(r.code, 0, r.stderr);
    for (const name of ["policy", "service"]) {
      assert.equal(
        await Deno.readTextFile(`${dir}/${name}.schema.json`),
        await Deno.readTextFile(`${REPO_ROOT}policies/schema/${name}.schema.json`),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("schema: an unknown or missing format is a usage error (exit 2)", async () => {
  const unknown = await runCli(["schema", "config"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown format "config"; known: policy, service/);
  assert.match(unknown.stderr, /Usage: camblet-agent schema/);
  const missing = await runCli(["schema"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing format/);
});

Deno.test("schema --help has a description and examples", async () => {
  const r = await runCli(["schema", "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Description:/);
  assert.ok(r.stdout.includes("Examples:\n  camblet-agent schema policy"), r.stdout);
});
