import assert from "node:assert/strict";
import { parseVaultConfig } from "./config.ts";
import { findPlugin } from "../../registry.ts";

const ENV = { VAULT_ADDR: "http://127.0.0.1:8200", VAULT_TOKEN: "t0k3n" };

Deno.test("vault config", async (t) => {
  await t.step("only VAULT_ADDR and VAULT_TOKEN: the documented defaults", () => {
    const r = parseVaultConfig(undefined, ENV);
    assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
    const v = r.value;
    assert.equal(v.address, "http://127.0.0.1:8200");
    assert.equal(v.auth.method, "token");
    assert.equal(v.auth.token, "t0k3n");
    assert.deepEqual(
      [v.mount, v.mode, v.issuer, v.intermediate.ttlMs, v.intermediate.keySize, v.maxTtlMs],
      ["pki", "intermediate", "default", 72 * 3_600_000, 2048, 24 * 3_600_000],
    );
    assert.deepEqual([v.leaf.timeoutMs, v.pollIntervalMs, v.checkIntervalMs, v.kernelDriver], [
      400,
      300_000,
      30_000,
      true,
    ]);
    assert.deepEqual(v.fromEnv, ["VAULT_ADDR", "VAULT_TOKEN"]);
  });

  await t.step("VAULT_* variables win over the file, as in Vault Agent", () => {
    const r = parseVaultConfig(
      { address: "https://file:8200", namespace: "file-ns", tls: { skipVerify: false } },
      {
        ...ENV,
        VAULT_NAMESPACE: "env-ns",
        VAULT_CACERT: "/ca.pem",
        VAULT_CLIENT_CERT: "/c.pem",
        VAULT_CLIENT_KEY: "/c.key",
        VAULT_SKIP_VERIFY: "1",
        VAULT_TLS_SERVER_NAME: "vault.internal",
      },
    );
    assert.ok(r.ok);
    assert.equal(r.value.address, "http://127.0.0.1:8200");
    assert.equal(r.value.namespace, "env-ns");
    assert.deepEqual(r.value.tls, {
      caCert: "/ca.pem",
      clientCert: "/c.pem",
      clientKey: "/c.key",
      serverName: "vault.internal",
      skipVerify: true,
    });
  });

  await t.step("VAULT_TOKEN does not override a login method", () => {
    const r = parseVaultConfig({ auth: { method: "approle", roleId: "r" } }, ENV);
    assert.ok(r.ok);
    assert.equal(r.value.auth.token, undefined);
    assert.equal(r.value.auth.mount, "approle");
  });

  await t.step("every problem at once, with paths", () => {
    const r = parseVaultConfig({
      mode: "leaf",
      mount: "/pki",
      leaf: { timeout: "2s" },
      auth: { method: "cert" },
      intermediate: { ttl: "soon" },
      extra: 1,
    }, { VAULT_ADDR: "http://v:8200" });
    assert.ok(!r.ok);
    const fields = r.problems.map((p) => p.field).sort();
    assert.deepEqual(fields, ["extra", "intermediate.ttl", "mount"]);
    const r2 = parseVaultConfig(
      { mode: "leaf", leaf: { timeout: "2s" }, auth: { method: "cert" } },
      {
        VAULT_ADDR: "http://v:8200",
      },
    );
    assert.ok(!r2.ok);
    assert.deepEqual(r2.problems.map((p) => `${p.field}: ${p.message}`), [
      "tls.clientCert: required for cert auth: set tls.clientCert and tls.clientKey (VAULT_CLIENT_CERT, VAULT_CLIENT_KEY)",
      "address: cert auth needs an https:// address",
      'leaf.role: required in mode "leaf": the role of <mount>/sign/<role>',
      "leaf.timeout: must be under 1s (the kernel waits 1 s for an answer)",
    ]);
  });

  await t.step("no address, no token: says which variables to set", () => {
    const r = parseVaultConfig({}, {});
    assert.ok(!r.ok);
    assert.deepEqual(r.problems.map((p) => `${p.field}: ${p.message}`), [
      "address: required: set VAULT_ADDR or plugins.ca.vault.address",
      "auth.token: required: set VAULT_TOKEN, auth.token or auth.tokenFile",
    ]);
    const bad = parseVaultConfig({ address: "vault:8200", auth: { token: "x" } }, {});
    assert.ok(!bad.ok);
    assert.match(bad.problems[0]!.message, /not http:\/\/ or https:\/\//);
  });

  await t.step("the registry lists the plugin", () => {
    assert.equal(findPlugin("ca", "vault")?.name, "vault");
    assert.equal(findPlugin("ca", "spire")?.name, "spire");
  });
});
