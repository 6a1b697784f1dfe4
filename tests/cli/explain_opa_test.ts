import assert from "node:assert/strict";
import { skip } from "../_skip.ts";
import { peerMissing } from "../peers/ensure_peer.ts";
import { join } from "node:path";
import { runCli } from "./_run.ts";
import { opaBuildBundle } from "../peers/opa.ts";
import { issuanceWasm } from "../sources/_bundles.ts";

// Needs a peer that `deno task peers` builds; tests never build one.
const ignore = skip(peerMissing("opa"));

const REGO = new URL("../../policies/rego/", import.meta.url).pathname;
const POLICY = `- selectors:
    - process:name: python3
      destination:port: 8000
      direction: input
  certificate:
    workloadID: web
    ttl: 3600s
`;

Deno.test("explain --opa shows the issuance policy's decision for the matched SPIFFE ID", {
  ignore,
}, async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "camblet-explain-opa-" });
  await Deno.mkdir(join(dir, "policies"));
  await Deno.writeTextFile(join(dir, "policies", "web.yaml"), POLICY);
  await Deno.writeTextFile(join(dir, "services.yaml"), "[]\n");
  const bundle = join(dir, "bundle.tar.gz");
  await Deno.writeFile(
    bundle,
    await opaBuildBundle(REGO, { entrypoints: ["camblet/issuance/decision"] }),
  );
  await Deno.writeFile(join(dir, "policy.wasm"), (await issuanceWasm()).wasm);
  await Deno.writeTextFile(
    join(dir, "data.json"),
    '{"max_ttl_seconds": 600, "reserved_paths": {"web": [0]}}',
  );
  const base = [
    "explain",
    "--trust-domain",
    "acme.test",
    "--policies-path",
    join(dir, "policies"),
    "--services-path",
    join(dir, "services.yaml"),
    "--label",
    "process:name=python3",
    "--label",
    "process:uid=1000",
    "--direction",
    "input",
    "--port",
    "8000",
  ];
  try {
    await t.step("an opa build bundle: allowed", async () => {
      const r = await runCli([...base, "--opa", bundle]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /SPIFFE ID +spiffe:\/\/acme.test\/web/);
      assert.match(
        r.stdout,
        /\n\nOPA issuance policy \(camblet\/issuance\/decision, policy.wasm in .*bundle.tar.gz\)\n {2}decision {9}allow\n {2}input {12}\{"spiffe_id":"spiffe:\/\/acme.test\/web",.*"ttl_seconds":3600,"task":\{"uid":1000,"command_name":"python3"\}/,
      );
    });
    await t.step("a wasm module with other data: denied, with every reason", async () => {
      const r = await runCli([
        ...base,
        "--opa",
        join(dir, "policy.wasm"),
        "--opa-data",
        join(dir, "data.json"),
        "--output",
        "json",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const doc = JSON.parse(r.stdout);
      assert.equal(doc.spiffeId, "spiffe://acme.test/web");
      assert.deepEqual({ allow: doc.opa.allow, reasons: doc.opa.reasons }, {
        allow: false,
        reasons: [
          'path "web" is reserved for uids 0, requested by uid 1000',
          "ttl 3600s is above the issuance maximum of 600s",
        ],
      });
      assert.equal(doc.opa.input.policy.workloadID, "web");
    });
    await t.step("not intercepted: not consulted", async () => {
      const r = await runCli([
        ...base.slice(0, -4),
        "--direction",
        "output",
        "--port",
        "9",
        "--opa",
        bundle,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /not consulted: no certificate is issued for this connection/);
    });
    await t.step("a module without the entrypoint is an error naming it", async () => {
      const r = await runCli([...base, "--opa", bundle, "--opa-entrypoint", "camblet/other"]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /entrypoint "camblet\/other" is not in the wasm module/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
