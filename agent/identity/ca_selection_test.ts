import assert from "node:assert/strict";
import { caSelection } from "./ca_selection.ts";
import { configSchema } from "../config/schema.ts";

Deno.test("caSelection", async (t) => {
  await t.step("self-signed by default, with agent.caPEMPath", () => {
    const s = caSelection(configSchema.parse({ agent: { caPEMPath: "/x/ca.pem" } }));
    assert.deepEqual(s, {
      kind: "ca",
      name: "self-signed",
      config: { caPemPath: "/x/ca.pem" },
      path: "plugins.ca.self-signed",
    });
    const own = caSelection(configSchema.parse({
      plugins: { ca: { "self-signed": { caPemPath: "/y.pem", keySize: 4096 } } },
    }));
    assert.deepEqual(own.config, { caPemPath: "/y.pem", keySize: 4096 });
  });

  await t.step("an external entry with the selected name wins", () => {
    const entry = { kind: "ca", name: "go-ca", path: "/bin/go-ca" };
    const s = caSelection(configSchema.parse({
      agent: { ca: "go-ca" },
      plugins: { external: [{ kind: "attestor", name: "go-ca", path: "/a" }, entry] },
    }));
    assert.equal(s.path, "plugins.external[1]");
    assert.deepEqual(s.config, entry);
    assert.equal(s.definition?.kind, "ca");
  });

  await t.step("another built-in name passes its own config through", () => {
    const s = caSelection(
      configSchema.parse({ agent: { ca: "vault" }, plugins: { ca: { vault: { a: 1 } } } }),
    );
    assert.deepEqual([s.name, s.config, s.definition], ["vault", { a: 1 }, undefined]);
  });
});
