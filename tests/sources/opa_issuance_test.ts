/**
 * End to end: an opa-compiled issuance policy (`opa build -t wasm` of policies/rego/issuance.rego)
 * in a signed bundle on a loopback HTTP server, loaded by the policy sources, consulted by the
 * identity manager for the kernel's real CSR (camblet-driver capture, csr-web.pem). The first
 * bundle's data allows it; the next one's denies it, which is a refusal certificate with the
 * policy's reason in the audit record, never an error answer.
 */
import assert from "node:assert/strict";
import { skip } from "../_skip.ts";
import { peerMissing } from "../peers/ensure_peer.ts";
import { PolicySources } from "../../agent/sources/policy_sources.ts";
import { IdentityManager } from "../../agent/identity/manager.ts";
import { AuditLog } from "../../agent/identity/audit.ts";
import { MetricsRegistry } from "../../plugins/sdk/metrics.ts";
import { checkKernelAnswer } from "../../driver/answer_check.ts";
import { logger } from "../../agent/log.ts";
import { SelfSignedCa } from "../../plugins/ca/self_signed/self_signed_ca.ts";
import { parseSelfSignedConfig } from "../../plugins/ca/self_signed/config.ts";
import { CAPTURE_TIME, captureCsrSign, pki, taskLabels } from "../fakes/identity_capture.ts";
import { csrData } from "../fakes/identity_csr.ts";
import { compactJson, issuanceWasm, makeBundle, signingKey } from "./_bundles.ts";
import { BundleServer } from "./_bundle_server.ts";
import { specsFor } from "./_specs.ts";

// Needs a peer that `deno task peers` builds; tests never build one.
const ignore = skip(peerMissing("opa"));

const clock = { now: () => CAPTURE_TIME };

/** The capture's web-policy and service, as policy files. */
const POLICY = `- selectors:
    - process:name: python3
      destination:port: 8000
      direction: input
  certificate:
    workloadID: web
    ttl: 3600s
  connection:
    mtls: STRICT
    allowedSPIFFEIDs: [spiffe://acme.test/curl]
`;
const SERVICE = "- addresses: [{address: 127.0.0.1, port: 8000}]\n  labels: {app:label: web}\n";

Deno.test("OPA issuance policy from a signed bundle allows, then denies, the kernel's CSR", {
  ignore,
}, async (t) => {
  const { wasm } = await issuanceWasm();
  const key = await signingKey();
  const bundle = (revision: string, maxTtl: number) =>
    makeBundle({
      revision,
      files: {
        "policies/web.yaml": POLICY,
        "services/web.yaml": SERVICE,
        "policy.wasm": wasm,
        "data.json": compactJson({ max_ttl_seconds: maxTtl, reserved_paths: { "system/": [0] } }),
      },
      sign: { privateKey: key.privateKey },
    });
  const server = BundleServer.start();
  server.serve = { kind: "bundle", body: await bundle("allow-1", 7200) };
  const dir = await Deno.makeTempDir({ prefix: "camblet-opa-e2e-" });
  const sources = await PolicySources.start({
    specs: specsFor([{
      type: "http",
      name: "bundles",
      url: server.url(),
      verification: { key: key.publicPem },
    }]),
    trustDomain: "acme.test",
  });
  const parsed = parseSelfSignedConfig({ caPemPath: `${dir}/ca.pem`, watch: false });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  const ca = await SelfSignedCa.open(parsed.value, {
    clock,
    log: logger("test"),
    maintenanceIntervalMs: 0,
  });
  const audit = new AuditLog();
  const manager = await IdentityManager.create({
    ca,
    trustDomain: "acme.test",
    payloads: () => sources.current.payloads,
    issuanceHook: () => sources.current.issuanceHook,
    labelsFor: (task) => Promise.resolve(taskLabels(task)),
    defaultCertTtlMs: 86_400_000,
    clock,
    audit,
    metrics: new MetricsRegistry(),
  });
  const web = await captureCsrSign("python3");
  const data = csrData(await pki("csr-web.pem"), "3600s");
  try {
    await t.step("the bundle's issuance policy is in force", () => {
      assert.deepEqual(sources.status().issuance, {
        source: "http(bundles)",
        revision: "allow-1",
        path: "policy.wasm",
        entrypoint: "camblet/issuance/decision",
      });
    });

    await t.step("allowed: the kernel's CSR is signed", async () => {
      const answer = await manager.signForKernel({ task: web.task_context, data });
      const check = await checkKernelAnswer(answer, { now: CAPTURE_TIME });
      assert.deepEqual(check.problems, []);
      assert.ok(check.trusted, check.untrustedReason);
      const rec = audit.entries().at(-1)!;
      assert.equal(rec.outcome, "issued");
      assert.equal(rec.spiffeId, "spiffe://acme.test/web");
    });

    await t.step("a new bundle lowers the maximum TTL: the same CSR is refused", async () => {
      server.serve = { kind: "bundle", body: await bundle("deny-2", 600) };
      const snap = await sources.refresh();
      assert.equal(snap.issuance?.revision, "deny-2");
      const answer = await manager.signForKernel({ task: web.task_context, data });
      const check = await checkKernelAnswer(answer, { now: CAPTURE_TIME });
      assert.deepEqual(check.problems, [], "a refusal is a well-formed certificate answer");
      assert.equal(check.trusted, false, "trusted by no anchor");
      const rec = audit.entries().at(-1)!;
      assert.equal(rec.outcome, "refused");
      assert.equal(rec.reason, "policy_denied");
      assert.deepEqual(rec.policyReasons, ["ttl 3600s is above the issuance maximum of 600s"]);
      assert.equal(
        rec.detail,
        'Cannot sign CSR: issuance policy camblet/issuance/decision denies "spiffe://acme.test/web": ' +
          "ttl 3600s is above the issuance maximum of 600s",
      );
    });

    await t.step("a tampered bundle is refused; the denying policy stays in force", async () => {
      const good = await bundle("allow-3", 7200);
      server.serve = {
        kind: "bundle",
        body: await makeBundle({
          revision: "allow-3",
          files: { "policies/web.yaml": POLICY, "policy.wasm": wasm, "data.json": "{}" },
          sign: { privateKey: key.privateKey },
          after: { "data.json": compactJson({ max_ttl_seconds: 999999 }) },
        }),
      };
      await sources.refresh();
      assert.equal(sources.current.issuance?.revision, "deny-2");
      assert.equal(sources.status().sources[0]!.state, "failing");
      await manager.signForKernel({ task: web.task_context, data });
      assert.equal(audit.entries().at(-1)!.reason, "policy_denied");
      server.serve = { kind: "bundle", body: good };
      await sources.refresh();
      await manager.signForKernel({ task: web.task_context, data });
      assert.equal(audit.entries().at(-1)!.outcome, "issued");
    });
  } finally {
    await sources.dispose();
    await server.close();
    await ca.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
