import assert from "node:assert/strict";
import { loadPlugins, PluginLoadError, resolvePlugins, withErrorPrefix } from "./loader.ts";
import { definePlugin, type PluginKind } from "./types.ts";
import type { AnyPluginDefinition } from "./registry.ts";
import { CsrRejectedError } from "./ca/types.ts";
import { testContext } from "../tests/fakes/ca_plugins.ts";

/** In-process plugins that record their life and fail on demand. */
function recorder(events: string[]) {
  const make = (kind: PluginKind, name: string) =>
    definePlugin({
      kind,
      name,
      description: "test",
      parseConfig: (raw: unknown) => {
        const c = (raw ?? {}) as { fail?: boolean; n?: unknown };
        if (c.n !== undefined && typeof c.n !== "number") {
          return { ok: false, problems: [{ field: "n", message: "must be a number" }] };
        }
        return { ok: true, value: { fail: c.fail === true } };
      },
      create: (config: { fail: boolean }) => {
        if (config.fail) throw new Error("Cannot connect: 403 permission denied");
        events.push(`create ${name}`);
        return {
          name,
          sign: () => Promise.reject(new CsrRejectedError("bad CSR")),
          dispose: () => {
            events.push(`dispose ${name}`);
          },
        };
      },
    }) as AnyPluginDefinition;
  return [
    make("ca", "alpha"),
    make("attestor", "one"),
    make("attestor", "two"),
    make("policySource", "files"),
  ];
}

Deno.test("plugin loader", async (t) => {
  await t.step("parses everything first and reports every problem with its path", () => {
    const registry = recorder([]);
    const r = resolvePlugins([
      { kind: "ca", name: "alpha", config: { n: "x" }, path: "plugins.ca.alpha" },
      { kind: "ca", name: "vault", config: {}, path: "plugins.ca.vault" },
      { kind: "attestor", name: "nope", config: {}, path: "plugins.attestor.nope" },
    ], { registry });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(r.problems.map((p) => `${p.path}: ${p.message}`), [
      "plugins.ca: exactly one ca plugin is required, 2 are selected (alpha, vault)",
      "plugins.policySource: at least one policySource plugin is required",
      "plugins.ca.alpha.n: must be a number",
      'plugins.ca.vault: unknown ca plugin "vault" (available: alpha)',
      'plugins.attestor.nope: unknown attestor plugin "nope" (available: one, two)',
    ]);
  });

  await t.step("the built-in registry has the self-signed CA", () => {
    const r = resolvePlugins([{
      kind: "ca",
      name: "self-signed",
      config: {},
      path: "plugins.ca.self-signed",
    }], {
      enforce: ["ca"],
    });
    assert.equal(r.ok, false, "caPemPath is required");
    if (!r.ok) assert.match(r.problems[0]!.path, /^plugins\.ca\.self-signed\.caPemPath$/);
  });

  await t.step("creates in order; a failure disposes what was created, in reverse", async () => {
    const events: string[] = [];
    const registry = recorder(events);
    await assert.rejects(
      loadPlugins([
        { kind: "policySource", name: "files", config: {}, path: "p" },
        { kind: "attestor", name: "one", config: {}, path: "a1" },
        { kind: "attestor", name: "two", config: {}, path: "a2" },
        { kind: "ca", name: "alpha", config: { fail: true }, path: "c" },
      ], { registry, context: testContext }),
      (e: Error) => {
        assert.ok(e instanceof PluginLoadError);
        assert.equal(e.message, "ca(alpha): Cannot connect: 403 permission denied");
        return true;
      },
    );
    assert.deepEqual(events, [
      "create files",
      "create one",
      "create two",
      "dispose two",
      "dispose one",
      "dispose files",
    ]);
  });

  await t.step(
    "loaded plugins: by kind, errors prefixed (class kept), disposed in reverse",
    async () => {
      const events: string[] = [];
      const loaded = await loadPlugins([
        { kind: "policySource", name: "files", config: {}, path: "p" },
        { kind: "ca", name: "alpha", config: {}, path: "c" },
      ], { registry: recorder(events), context: testContext });
      const ca = loaded.of("ca")[0]!;
      await assert.rejects(
        ca.sign(
          { csr: new Uint8Array(), spiffeId: "", dnsNames: [], ttlMs: 1 },
          new AbortController().signal,
        ),
        (e: Error) => {
          assert.ok(e instanceof CsrRejectedError);
          assert.equal(e.message, "ca(alpha): bad CSR");
          return true;
        },
      );
      await loaded.dispose();
      assert.deepEqual(events, ["create files", "create alpha", "dispose alpha", "dispose files"]);
    },
  );

  await t.step("withErrorPrefix prefixes sync throws once", () => {
    const o = withErrorPrefix({
      f: () => {
        throw new TypeError("x");
      },
    }, "attestor(k8s): ");
    assert.throws(() => o.f(), { name: "TypeError", message: "attestor(k8s): x" });
  });
});
