import assert from "node:assert/strict";
import { BUILTIN_PLUGINS, findPlugin, pluginNames } from "./registry.ts";
import { PLUGIN_KINDS } from "./types.ts";

Deno.test("registry: unique kind/name pairs, known kinds, the self-signed CA", () => {
  const keys = BUILTIN_PLUGINS.map((d) => `${d.kind}/${d.name}`);
  assert.equal(new Set(keys).size, keys.length);
  for (const d of BUILTIN_PLUGINS) assert.ok(d.kind in PLUGIN_KINDS, d.kind);
  assert.equal(findPlugin("ca", "self-signed")?.name, "self-signed");
  assert.equal(findPlugin("attestor", "self-signed"), undefined);
  assert.deepEqual(pluginNames("ca"), ["self-signed", "spire", "vault"]);
});
