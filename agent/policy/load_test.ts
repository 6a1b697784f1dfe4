import assert from "node:assert/strict";
import { ValidationError } from "../errors.ts";
import { loadPolicySet } from "./load.ts";
import { compilePayloads } from "./payloads.ts";
import { resolveHostnames } from "./resolve.ts";
import { serviceHostnames } from "./services.ts";

async function layout(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir();
  for (const [name, text] of Object.entries(files)) {
    await Deno.mkdir(`${dir}/${name.split("/").slice(0, -1).join("/")}`, { recursive: true });
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  return dir;
}

Deno.test("loadPolicySet", async (t) => {
  const dir = await layout({
    "p/b.yaml": "- selectors: [{process:name: b}]\n  certificate: {workloadID: b}\n",
    "p/a.yml": "- selectors: [{process:name: a}]\n  certificate: {workloadID: a}\n",
    "p/empty.yaml": "",
    "p/.a.yml.swp": "garbage: [",
    "p/comments.json": "[]\n",
    "s/web.yaml": "- addresses: [{address: web.test, port: 443}]\n  labels: {app: web}\n",
  });
  try {
    let ips = ["192.0.2.1"];
    const resolver = (name: string) => Promise.resolve(name === "web.test" ? ips : []);
    const set = await loadPolicySet({
      policiesPaths: [`${dir}/p`],
      servicesPaths: [`${dir}/s`],
      trustDomain: "acme.corp",
      resolver,
    });
    await t.step(
      "reads directories in name order, skipping editor files; empty files are fine",
      () => {
        assert.deepEqual(set.files.policies.map((f) => f.slice(dir.length)), [
          "/p/a.yml",
          "/p/b.yaml",
          "/p/comments.json",
          "/p/empty.yaml",
        ]);
        assert.deepEqual(set.payloads.load_policies.policies.map((p) => p.certificate.workloadID), [
          "a",
          "b",
        ]);
        assert.deepEqual(set.warnings, []);
      },
    );
    await t.step("keeps sources and resolutions apart from the payloads", () => {
      assert.deepEqual(set.payloads.load_sd_info, { "192.0.2.1:443": { labels: ["app=web"] } });
      assert.deepEqual([...set.resolutions.addresses], [["web.test", ["192.0.2.1"]]]);
      assert.equal(set.services.length, 1);
    });
    await t.step("re-resolving and recompiling changes only the service table", async () => {
      ips = ["192.0.2.2", "2001:db8::2"];
      const resolutions = await resolveHostnames(serviceHostnames(set.services), resolver);
      const again = compilePayloads({
        trustDomain: "acme.corp",
        policies: set.policies,
        services: set.services,
        resolutions,
      });
      assert.deepEqual(again.problems, []);
      assert.deepEqual(Object.keys(again.payloads.load_sd_info), [
        "192.0.2.2:443",
        "2001:0db8:0000:0000:0000:0000:0000:0002:443",
      ]);
      assert.deepEqual(again.payloads.load_policies, set.payloads.load_policies);
    });
    await t.step("a hostname that stops resolving is a problem on recompile", () => {
      const again = compilePayloads({
        trustDomain: "acme.corp",
        policies: set.policies,
        services: set.services,
        resolutions: { addresses: new Map() },
      });
      assert.equal(again.problems[0]!.field, "addresses[0].address");
    });
    await t.step("missing default paths are warnings, explicit ones errors", async () => {
      const quiet = await loadPolicySet({
        policiesPaths: [`${dir}/none`],
        servicesPaths: [`${dir}/none2`],
        policiesExplicit: false,
        servicesExplicit: false,
        trustDomain: "acme.corp",
        resolver,
      });
      assert.deepEqual(quiet.warnings.map((w) => w.message), [
        "policies path does not exist",
        "services path does not exist",
      ]);
      await assert.rejects(
        loadPolicySet({
          policiesPaths: [`${dir}/none`],
          servicesPaths: [],
          trustDomain: "t",
          resolver,
        }),
        (e: unknown) =>
          e instanceof ValidationError && /policies path does not exist/.test(e.message),
      );
    });
    await t.step("the same file named twice is read once", async () => {
      const twice = await loadPolicySet({
        policiesPaths: [`${dir}/p`, `${dir}/p/a.yml`],
        servicesPaths: [],
        trustDomain: "acme.corp",
        resolver,
      });
      assert.equal(twice.payloads.load_policies.policies.length, 2);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
