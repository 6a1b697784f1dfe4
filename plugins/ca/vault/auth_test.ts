/**
 * Auth methods, token upkeep and the `VAULT_*` environment against real Vault servers (one plain,
 * one with `-dev-tls`), every log record captured unredacted to prove no secret is ever logged.
 */
import assert from "node:assert/strict";
import { skip } from "../../../tests/_skip.ts";
import { peerMissing } from "../../../tests/peers/ensure_peer.ts";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { SignJWT } from "jose";
import { vaultRequest } from "../../../tests/peers/mod.ts";
import { DelayProxy } from "../../../tests/fakes/ca_delay_proxy.ts";
import { type KernelAsk, kernelPath } from "../../../tests/fakes/ca_kernel_path.ts";
import { encodePem } from "../../sdk/pem.ts";
import { exportPkcs8, generateRsaKeyPair } from "../../sdk/keys.ts";
import { createRootCa, issueLeaf } from "../../sdk/x509.ts";
import {
  createToken,
  startPkiVault,
  startTlsVault,
  testLog,
  vaultConfig,
  writeSignerPolicy,
} from "./_test_vault.ts";
import { VaultIntermediateCa } from "./intermediate_ca.ts";
import { VaultLeafCa } from "./leaf_ca.ts";
import { VaultClient } from "./vault_client.ts";
import { LEAF_ROLE } from "./_test_vault.ts";

// Needs a peer that `deno task peers` builds; tests never build one.
const ignore = skip(peerMissing("vault"));

const LEAF = { mode: "leaf", leaf: { role: "camblet" } };

/** A record as plain text, nothing redacted (errors by message and cause). */
function rawRecord(r: LogRecord): string {
  const plain = (_k: string, v: unknown) =>
    v instanceof Error ? `${v.name}: ${v.message} ${String(v.cause ?? "")}` : v;
  return JSON.stringify({ message: r.message, properties: r.properties }, plain) + "\n";
}

function movableClock() {
  let offset = 0;
  return { now: () => Date.now() + offset, advance: (ms: number) => offset += ms };
}

function issued(a: KernelAsk, what: string) {
  assert.deepEqual(a.check.problems, [], what);
  assert.equal(a.outcome, "issued", `${what}: ${a.record.detail ?? ""}`);
}

Deno.test("vault auth, tokens and environment", { ignore }, async (t) => {
  const lines: string[] = [];
  await configure({
    reset: true,
    // Unredacted: the plugin must never put a secret into a record at all.
    sinks: { mem: (r: LogRecord) => lines.push(rawRecord(r)) },
    loggers: [
      { category: ["camblet"], lowestLevel: "debug", sinks: ["mem"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["mem"] },
    ],
  });
  const secrets: string[] = [];
  const { vault } = await startPkiVault();
  secrets.push(vault.rootToken);
  const dir = await Deno.makeTempDir({ prefix: "camblet-vault-auth-" });
  const opts = () => ({ clock: movableClock(), log: testLog, timer: false });
  try {
    await writeSignerPolicy(vault, "camblet-signer");

    await t.step("AppRole: logs in; a revoked token is replaced by a new login", async () => {
      await vaultRequest(vault, "POST", "sys/auth/approle", { type: "approle" });
      await vaultRequest(vault, "POST", "auth/approle/role/camblet", {
        token_policies: ["camblet-signer"],
        token_ttl: "1h",
      });
      const roleId = String(
        ((await vaultRequest(vault, "GET", "auth/approle/role/camblet/role-id")).data as Record<
          string,
          unknown
        >)
          .role_id,
      );
      const secretId = String(
        ((await vaultRequest(vault, "POST", "auth/approle/role/camblet/secret-id", {}))
          .data as Record<string, unknown>)
          .secret_id,
      );
      secrets.push(secretId);
      await Deno.writeTextFile(`${dir}/secret-id`, `${secretId}\n`);
      const clock = movableClock();
      const ca = await VaultLeafCa.open(
        vaultConfig({ address: vault.address }, {
          ...LEAF,
          auth: { method: "approle", roleId, secretIdFile: `${dir}/secret-id` },
        }),
        { clock, log: testLog, timer: false },
      );
      try {
        const path = await kernelPath(ca, clock);
        issued(await path.ask(), "AppRole token");
        assert.equal(ca.session.tokens.status().logins, 1);
        await vaultRequest(vault, "POST", "auth/token/revoke", { token: ca.session.client.token });
        const refused = await path.ask();
        assert.equal(refused.outcome, "refused", "the revoked token fails this request");
        await ca.maintain(); // the background re-login the 403 triggered
        assert.equal(ca.session.tokens.status().logins, 2);
        issued(await path.ask(), "after the re-login");
      } finally {
        await ca.dispose();
      }
    });

    await t.step(
      "Kubernetes: logs in with the service-account JWT from its file",
      async () => {
        const keys = await generateRsaKeyPair(2048);
        const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
        // Vault's minimal build has no kubernetes method: jwt mounted at auth/kubernetes takes the same login.
        await vaultRequest(vault, "POST", "sys/auth/kubernetes", { type: "jwt" });
        await vaultRequest(vault, "POST", "auth/kubernetes/config", {
          jwt_validation_pubkeys: [encodePem("PUBLIC KEY", spki)],
          bound_issuer: "kubernetes/serviceaccount",
        });
        await vaultRequest(vault, "POST", "auth/kubernetes/role/camblet", {
          role_type: "jwt",
          user_claim: "sub",
          bound_audiences: ["vault"],
          bound_subject: "system:serviceaccount:camblet:agent",
          token_policies: ["camblet-signer"],
          token_ttl: "1h",
        });
        const jwt = await new SignJWT({})
          .setProtectedHeader({ alg: "RS256" })
          .setIssuer("kubernetes/serviceaccount")
          .setSubject("system:serviceaccount:camblet:agent")
          .setAudience("vault")
          .setIssuedAt()
          .setExpirationTime("1h")
          .sign(keys.privateKey);
        secrets.push(jwt);
        await Deno.writeTextFile(`${dir}/sa-token`, jwt);
        const ca = await VaultIntermediateCa.open(
          vaultConfig({ address: vault.address }, {
            auth: { method: "kubernetes", role: "camblet", jwtFile: `${dir}/sa-token` },
          }),
          opts(),
        );
        try {
          assert.equal(ca.session.tokens.status().method, "kubernetes");
          assert.equal(ca.session.tokens.status().logins, 1);
          secrets.push(ca.session.client.token!);
        } finally {
          await ca.dispose();
        }
      },
    );

    await t.step(
      "token renewal at half its TTL, and a rewritten token file is picked up",
      async () => {
        const token = await createToken(vault, { policies: ["camblet-signer"], ttl: "20s" });
        secrets.push(token);
        await Deno.writeTextFile(`${dir}/token`, token);
        const clock = movableClock();
        const ca = await VaultLeafCa.open(
          vaultConfig({ address: vault.address }, { ...LEAF, auth: { tokenFile: `${dir}/token` } }),
          { clock, log: testLog, timer: false },
        );
        try {
          const before = ca.session.tokens.status().expiresAt!;
          await ca.maintain();
          assert.equal(ca.session.tokens.status().renewals, 0, "not due yet");
          clock.advance(11_000);
          await ca.maintain();
          assert.equal(ca.session.tokens.status().renewals, 1);
          assert.ok(ca.session.tokens.status().expiresAt! > before, "renew-self extended it");
          const next = await createToken(vault, { policies: ["camblet-signer"], ttl: "1h" });
          secrets.push(next);
          await Deno.writeTextFile(`${dir}/token`, next);
          await vaultRequest(vault, "POST", "auth/token/revoke", { token });
          await ca.maintain();
          assert.equal(ca.session.client.token, next, "the new token from the file is used");
          issued(
            await (await kernelPath(ca, clock)).ask(),
            "with the token from the rewritten file",
          );
        } finally {
          await ca.dispose();
        }
      },
    );

    await t.step("VAULT_NAMESPACE is sent as X-Vault-Namespace on every request", async () => {
      const proxy = DelayProxy.start({
        target: { hostname: "127.0.0.1", port: Number(new URL(vault.address).port) },
        record: true,
      });
      try {
        const ca = await VaultLeafCa.open(
          vaultConfig({ address: proxy.url, rootToken: vault.rootToken }, LEAF, {
            VAULT_NAMESPACE: "team-a",
          }),
          opts(),
        );
        await ca.dispose();
        const requests = proxy.recordedText().split(/\r\n\r\n/).filter((r) =>
          /^(GET|POST) /m.test(r)
        );
        assert.ok(requests.length >= 2);
        for (const r of requests) assert.match(r, /^x-vault-namespace: team-a$/im);
      } finally {
        await proxy.close();
      }
    });
  } finally {
    await vault.stop();
  }

  const tlsVault = await startTlsVault();
  secrets.push(tlsVault.rootToken);
  try {
    const ca = await Deno.readTextFile(tlsVault.caPath);
    const admin = new VaultClient({ address: tlsVault.address, tls: { ca: [ca] } });
    admin.token = tlsVault.rootToken;
    const call = (method: string, path: string, body?: unknown) =>
      admin.request(method, path, { timeoutMs: 10_000, ...(body ? { body } : {}) });
    try {
      await call("POST", "sys/mounts/pki", { type: "pki", config: { max_lease_ttl: "87600h" } });
      await call("POST", "pki/root/generate/internal", {
        common_name: "TLS Root",
        key_type: "rsa",
        ttl: "87600h",
      });
      await call("POST", "pki/roles/camblet", LEAF_ROLE);
      await call("PUT", "sys/policies/acl/camblet-signer", {
        policy: 'path "pki/root/sign-intermediate" { capabilities = ["update"] }',
      });
    } finally {
      admin.close();
    }

    await t.step(
      "VAULT_CACERT / VAULT_CAPATH: TLS verified against the bundle; without it, refused",
      async () => {
        const env = { VAULT_CACERT: tlsVault.caPath };
        const ok = await VaultIntermediateCa.open(vaultConfig(tlsVault, {}, env), opts());
        await ok.dispose();
        await assert.rejects(
          VaultIntermediateCa.open(vaultConfig(tlsVault), opts()),
          /Cannot GET auth\/token\/lookup-self at https:.*(certificate|issuer)/i,
        );
        await Deno.mkdir(`${dir}/cas`);
        await Deno.copyFile(tlsVault.caPath, `${dir}/cas/vault.crt`);
        const byDir = await VaultIntermediateCa.open(
          vaultConfig(tlsVault, {}, { VAULT_CAPATH: `${dir}/cas` }),
          opts(),
        );
        await byDir.dispose();
        const skip = await VaultIntermediateCa.open(
          vaultConfig(tlsVault, {}, { VAULT_SKIP_VERIFY: "true" }),
          opts(),
        );
        await skip.dispose();
      },
    );

    await t.step("TLS client certificate auth (VAULT_CLIENT_CERT, VAULT_CLIENT_KEY)", async () => {
      const now = Date.now();
      const clientCa = await createRootCa({
        commonName: "Agent client CA",
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 3_600_000),
      });
      const keys = await generateRsaKeyPair(2048);
      const leaf = await issueLeaf(clientCa, {
        publicKey: keys.publicKey,
        subject: "CN=camblet-agent",
        uris: ["spiffe://acme.test/camblet-agent"],
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 3_600_000),
      });
      const caPem = clientCa.certificate.toString("pem");
      await Deno.writeTextFile(`${dir}/client.pem`, leaf.toString("pem"));
      await Deno.writeTextFile(
        `${dir}/client.key`,
        encodePem("PRIVATE KEY", await exportPkcs8(keys.privateKey)),
      );
      const admin2 = new VaultClient({ address: tlsVault.address, tls: { ca: [ca] } });
      admin2.token = tlsVault.rootToken;
      try {
        await admin2.request("POST", "sys/auth/cert", {
          timeoutMs: 10_000,
          body: { type: "cert" },
        });
        await admin2.request("POST", "auth/cert/certs/agent", {
          timeoutMs: 10_000,
          body: { certificate: caPem, token_policies: ["camblet-signer"], token_ttl: "1h" },
        });
      } finally {
        admin2.close();
      }
      const config = vaultConfig({ address: tlsVault.address }, {
        auth: { method: "cert", role: "agent" },
      }, {
        VAULT_CACERT: tlsVault.caPath,
        VAULT_CLIENT_CERT: `${dir}/client.pem`,
        VAULT_CLIENT_KEY: `${dir}/client.key`,
      });
      const vca = await VaultIntermediateCa.open(config, opts());
      try {
        assert.equal(vca.session.tokens.status().method, "cert");
        assert.equal(vca.session.tokens.status().logins, 1);
        secrets.push(vca.session.client.token!);
      } finally {
        await vca.dispose();
      }
    });
  } finally {
    await tlsVault.stop();
    await Deno.remove(dir, { recursive: true });
    await reset();
  }

  await t.step("no secret ever reached a log record", () => {
    const text = lines.join("");
    assert.ok(lines.length > 10, `captured ${lines.length} log lines`);
    for (const s of secrets) {
      assert.ok(!text.includes(s), `a secret (${s.slice(0, 6)}…) is in the logs`);
    }
  });
});
