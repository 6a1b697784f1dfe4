import assert from "node:assert/strict";
import { loadConfig } from "../config/load.ts";
import { ValidationError } from "../errors.ts";
import { loadPayloads } from "./load_payloads.ts";

Deno.test("loadPayloads", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/policies`);
    await Deno.writeTextFile(
      `${dir}/policies/web.yaml`,
      '- selectors: [{process:name: nginx}]\n  certificate: {workloadID: web}\n  connection: {allowedSPIFFEIDs: ["spiffe://{{.TrustDomain}}/x"]}\n',
    );
    await t.step("uses the configured paths and trust domain", async () => {
      const loaded = await loadConfig({
        env: {},
        search: [],
        flags: { "agent.policiesPath": [`${dir}/policies`], "agent.trustDomain": "acme.corp" },
      });
      const { payloads, provenance, warnings, files } = await loadPayloads(loaded);
      assert.deepEqual(payloads.load_config, { trust_domain: "acme.corp" });
      const [p] = payloads.load_policies.policies;
      assert.deepEqual(p!.connection, { allowedSPIFFEIDs: ["spiffe://acme.corp/x"] });
      assert.deepEqual(provenance[p!.id], { file: `${dir}/policies/web.yaml`, item: 0, line: 1 });
      // The services path was left at its default; where it does not exist, that is a warning.
      if (!(await Deno.stat("/etc/camblet/services").catch(() => undefined))) {
        assert.deepEqual(warnings, [{
          file: "/etc/camblet/services",
          message: "services path does not exist",
        }]);
      }
      assert.deepEqual(files.policies, [`${dir}/policies/web.yaml`]);
    });
    await t.step("a services path set in the environment must exist", async () => {
      const loaded = await loadConfig({
        env: { AGENT_SERVICESPATH: `${dir}/nope` },
        search: [],
        flags: { "agent.policiesPath": [`${dir}/policies`] },
      });
      await assert.rejects(loadPayloads(loaded), (e: unknown) =>
        e instanceof ValidationError &&
        e.problems.some((p) => p.file === `${dir}/nope` && /does not exist/.test(p.message)));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
