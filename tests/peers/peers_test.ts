/**
 * Proves each real peer starts and answers. A peer that `deno task peers` has not built is skipped
 * with the reason printed; everything else is a failure.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { loadPolicy } from "@open-policy-agent/opa-wasm";
import { peerMissing } from "./ensure_peer.ts";
import { opaBuildWasm, opaTest } from "./opa.ts";
import { enablePki, startOpenBao, vaultRequest } from "./vault.ts";
import { startSpire } from "./spire.ts";
import { createSpireEntry, fetchX509Svid } from "./spire_entry.ts";
import { skip } from "../_skip.ts";

const POLICY = `package camblet.issuance

default allow := false

allow if input.uid == 0
`;

const POLICY_TEST = `package camblet.issuance

test_root_allowed if allow with input as {"uid": 0}

test_others_denied if not allow with input as {"uid": 1000}
`;

Deno.test({
  name: "opa: builds Rego to wasm and runs opa test",
  ignore: skip(peerMissing("opa")),
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "camblet-peers-test-" });
    try {
      await Deno.writeTextFile(join(dir, "policy.rego"), POLICY);
      await Deno.writeTextFile(join(dir, "policy_test.rego"), POLICY_TEST);

      await t.step("opa build -t wasm gives a policy opa-wasm evaluates", async () => {
        const wasm = await opaBuildWasm(dir, "camblet/issuance/allow");
        assert.deepEqual([...wasm.subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d]); // "\0asm"
        const policy = await loadPolicy(wasm);
        assert.deepEqual(policy.evaluate({ uid: 0 }), [{ result: true }]);
        assert.deepEqual(policy.evaluate({ uid: 1000 }), [{ result: false }]);
      });

      await t.step("opa test passes good tests and fails a wrong one", async () => {
        const good = await opaTest([dir]);
        assert.equal(good.code, 0, good.stdout + good.stderr);
        assert.match(good.stdout, /PASS: 2\/2/);
        await Deno.writeTextFile(
          join(dir, "wrong_test.rego"),
          'package camblet.issuance\n\ntest_wrong if allow with input as {"uid": 7}\n',
        );
        const bad = await opaTest([dir]);
        assert.notEqual(bad.code, 0);
        assert.match(bad.stdout, /test_wrong: FAIL/);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "vault: dev server answers sys/health and generates an RSA PKI root",
  ignore: skip(peerMissing("bao")),
  async fn(t) {
    const server = await startOpenBao();
    try {
      await t.step("sys/health: initialized and unsealed", async () => {
        const health = await vaultRequest(server, "GET", "sys/health");
        assert.equal(health.initialized, true);
        assert.equal(health.sealed, false);
        assert.match(String(health.version), /^\d+\.\d+\.\d+/);
      });

      await t.step("the root token works and nothing but the dev defaults is mounted", async () => {
        const mounts = await vaultRequest(server, "GET", "sys/mounts");
        const paths = Object.keys(mounts.data as Record<string, unknown>);
        assert.ok(!paths.some((p) => p.startsWith("pki")), `unexpected mounts: ${paths}`);
      });

      await t.step("enablePki mounts PKI and generates an RSA root", async () => {
        const root = await enablePki(server, {
          mount: "pki",
          rootCN: "Camblet Peers Test Root",
          keyType: "rsa",
        });
        const cert = new x509.X509Certificate(root.certificate);
        assert.equal(cert.subject, "CN=Camblet Peers Test Root");
        assert.equal(cert.publicKey.algorithm.name, "RSASSA-PKCS1-v1_5");
        assert.ok(await cert.isSelfSigned());
        const ca = await fetch(`${server.address}/v1/pki/ca/pem`);
        assert.equal((await ca.text()).trim(), root.certificate.trim());
      });
    } finally {
      await server.stop();
    }
    await assert.rejects(fetch(`${server.address}/v1/sys/health`), "stopped server still answers");
  },
});

Deno.test({
  name: "vault: TLS dev mode is trusted through its generated CA only",
  ignore: skip(peerMissing("bao")),
  async fn() {
    await using server = await startOpenBao({ tls: true });
    assert.match(server.address, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(server.caCertPem?.includes("BEGIN CERTIFICATE"));
    const health = await vaultRequest(server, "GET", "sys/health");
    assert.equal(health.sealed, false);
    await assert.rejects(fetch(`${server.address}/v1/sys/health`), "untrusted CA accepted");
  },
});

Deno.test({
  name: "spire: agent is healthy and serves an RSA X509-SVID over the Workload API",
  ignore: skip(peerMissing("spire-server", "spire-agent")),
  async fn(t) {
    const spire = await startSpire({ trustDomain: "camblet.test" });
    try {
      await t.step("the Workload API socket exists", async () => {
        assert.ok((await Deno.stat(spire.agentSocket)).isSocket);
      });

      await t.step("a uid entry yields an X509-SVID chained to an RSA CA", async () => {
        const entry = await createSpireEntry(spire, {
          spiffeId: "/peers-test",
          selectors: [`unix:uid:${Deno.uid()}`],
        });
        assert.equal(entry.spiffeId, "spiffe://camblet.test/peers-test");
        const svid = await fetchX509Svid(spire);
        const leaf = new x509.X509Certificate(svid.certificatesPem);
        const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
        assert.deepEqual(san?.names.items.map((n) => n.value), [entry.spiffeId]);
        const bundle = new x509.X509Certificate(svid.bundlePem);
        assert.equal(bundle.publicKey.algorithm.name, "RSASSA-PKCS1-v1_5");
        assert.ok(await leaf.verify({ publicKey: bundle.publicKey, signatureOnly: true }));
      });
    } finally {
      await spire.stop();
    }
    await assert.rejects(Deno.stat(spire.dir), "temp dir left behind");
  },
});
