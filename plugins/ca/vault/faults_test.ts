/**
 * Faults against a real Vault, seen from the kernel: the identity manager in front of the plugin
 * answers every `csr_sign` well within the deadline, never with an error; the answer is a trusted
 * leaf while signing is safe, a refusal certificate when it is not, with logs and metrics.
 */
import assert from "node:assert/strict";
import { skip } from "../../../tests/_skip.ts";
import { peerMissing } from "../../../tests/peers/ensure_peer.ts";
import { vaultRequest } from "../../../tests/peers/mod.ts";
import { DelayProxy } from "../../../tests/fakes/ca_delay_proxy.ts";
import { type KernelAsk, kernelPath } from "../../../tests/fakes/ca_kernel_path.ts";
import { MetricsRegistry } from "../../sdk/metrics.ts";
import { CapabilityError } from "../../sdk/errors.ts";
import { certOf } from "../../sdk/ca_chain.ts";
import {
  createToken,
  setUpPki,
  startPkiVault,
  testLog,
  vaultConfig,
  writeSignerPolicy,
} from "./_test_vault.ts";
import { VaultIntermediateCa } from "./intermediate_ca.ts";
import { VaultLeafCa } from "./leaf_ca.ts";

// Needs a peer that `deno task peers` builds; tests never build one.
const ignore = skip(peerMissing("vault"));

const HOUR = 3_600_000;

/** A clock the test moves forward. */
function movableClock() {
  let offset = 0;
  return { now: () => Date.now() + offset, advance: (ms: number) => offset += ms };
}

function issued(a: KernelAsk, what: string) {
  assert.deepEqual(a.check.problems, [], `${what}: well-formed answer`);
  assert.equal(a.outcome, "issued", `${what}: ${a.record.detail ?? ""}`);
  assert.ok(a.ms < 1000, `${what}: answered in ${a.ms} ms`);
}

function refused(a: KernelAsk, what: string, detail: RegExp) {
  assert.deepEqual(a.check.problems, [], `${what}: a refusal is still well formed`);
  assert.equal(a.outcome, "refused", what);
  assert.match(a.record.detail ?? "", detail, what);
  assert.ok(a.ms < 1000, `${what}: answered in ${a.ms} ms`);
}

Deno.test("vault faults: what issuance does", { ignore }, async (t) => {
  const { vault } = await startPkiVault();
  const proxy = DelayProxy.start({
    target: { hostname: "127.0.0.1", port: Number(new URL(vault.address).port) },
  });
  const viaProxy = { address: proxy.url, rootToken: vault.rootToken };
  try {
    await t.step(
      "Vault slowed beyond 1 s: intermediate keeps signing, leaf mode refuses in budget",
      async () => {
        const clock = movableClock();
        const metrics = new MetricsRegistry();
        const opts = { clock, log: testLog, metrics, timer: false };
        const inter = await VaultIntermediateCa.open(
          vaultConfig(viaProxy, { requestTimeout: "1s" }),
          opts,
        );
        const leaf = await VaultLeafCa.open(
          vaultConfig(viaProxy, { mode: "leaf", leaf: { role: "camblet" } }),
          opts,
        );
        try {
          const [pi, pl] = [await kernelPath(inter, clock), await kernelPath(leaf, clock)];
          issued(await pl.ask(), "leaf mode before the slowdown");
          proxy.delayMs = 1500;
          proxy.dropAll();
          issued(await pi.ask(), "intermediate mode with Vault slow");
          refused(await pl.ask(), "leaf mode with Vault slow", /no answer within 400 ms/);
          clock.advance(40 * HOUR); // past half of the 72h intermediate
          await inter.maintain();
          assert.equal(inter.status().failures, 1, "the renewal timed out");
          assert.equal(metrics.gauge("camblet_ca_upstream_up", "").get({ ca: "vault" }), 0);
          issued(await pi.ask(), "intermediate mode after a failed renewal");
        } finally {
          proxy.delayMs = 0;
          proxy.dropAll();
          await inter.dispose();
          await leaf.dispose();
        }
      },
    );

    await t.step(
      "wrong or expired credentials: start fails with a clear error, no secret in it",
      async () => {
        const bogus = "hvs.not-a-real-token-123";
        const e = await VaultIntermediateCa.open(
          vaultConfig({ address: vault.address }, {}, { VAULT_TOKEN: bogus }),
          {
            clock: movableClock(),
            log: testLog,
            timer: false,
          },
        ).then(() => undefined, (e: Error) => e);
        assert.match(e?.message ?? "", /lookup-self .*403 permission denied/);
        assert.ok(!e!.message.includes(bogus), "the token is not in the message");
        const short = await createToken(vault, { policies: ["default"], ttl: "1s" });
        await new Promise((r) => setTimeout(r, 1500));
        await assert.rejects(
          VaultLeafCa.open(
            vaultConfig({ address: vault.address }, { mode: "leaf", leaf: { role: "camblet" } }, {
              VAULT_TOKEN: short,
            }),
            {
              clock: movableClock(),
              log: testLog,
              timer: false,
            },
          ),
          /403 permission denied/,
        );
      },
    );

    await t.step("revoked token: intermediate keeps signing, leaf mode refuses", async () => {
      await writeSignerPolicy(vault, "camblet-signer");
      const clock = movableClock();
      const token = await createToken(vault, { policies: ["camblet-signer"], ttl: "1h" });
      const opts = { clock, log: testLog, timer: false };
      const env = { VAULT_TOKEN: token };
      const inter = await VaultIntermediateCa.open(
        vaultConfig({ address: vault.address }, {}, env),
        opts,
      );
      const leaf = await VaultLeafCa.open(
        vaultConfig({ address: vault.address }, { mode: "leaf", leaf: { role: "camblet" } }, env),
        opts,
      );
      try {
        const [pi, pl] = [await kernelPath(inter, clock), await kernelPath(leaf, clock)];
        issued(await pl.ask(), "leaf mode with a good token");
        await vaultRequest(vault, "POST", "auth/token/revoke", { token });
        refused(await pl.ask(), "leaf mode with a revoked token", /403 permission denied/);
        clock.advance(40 * HOUR);
        await inter.maintain();
        assert.ok(inter.status().failures >= 1);
        assert.match(inter.status().lastError ?? "", /403/);
        issued(await pi.ask(), "intermediate mode with a revoked token");
      } finally {
        await inter.dispose();
        await leaf.dispose();
      }
    });

    await t.step(
      "intermediate about to expire: renewed at half-life; expired and no Vault: refused",
      async () => {
        const clock = movableClock();
        const ca = await VaultIntermediateCa.open(
          vaultConfig(viaProxy, { intermediate: { ttl: "1h" }, requestTimeout: "1s" }),
          {
            clock,
            log: testLog,
            timer: false,
          },
        );
        try {
          const path = await kernelPath(ca, clock);
          const first = certOf(ca.intermediate());
          clock.advance(20 * 60_000);
          await ca.maintain();
          assert.equal(ca.status().renewals, 0, "not due before half-life");
          clock.advance(15 * 60_000);
          await ca.maintain();
          assert.equal(ca.status().renewals, 1, "renewed after half-life");
          const second = certOf(ca.intermediate());
          assert.notEqual(second.serialNumber, first.serialNumber);
          const a = await path.ask();
          issued(a, "after renewal");
          assert.equal(
            a.check.chain[0]?.serialNumber,
            second.serialNumber,
            "leaves chain to the new intermediate",
          );
          proxy.refuse();
          clock.advance(20 * 60_000); // past half of the new intermediate, still valid

          await ca.maintain();
          assert.ok(ca.status().failures >= 1);
          issued(await path.ask(), "Vault gone, intermediate still valid");
          clock.advance(2 * HOUR);
          refused(
            await path.ask(),
            "Vault gone, intermediate expired",
            /intermediate expired at .* could not be renewed/,
          );
        } finally {
          proxy.refuse(false);
          await ca.dispose();
        }
      },
    );

    await t.step(
      "Vault root rotated: picked up, new leaves chain to the new root, both trusted",
      async () => {
        await setUpPki(vault, "pki_rot");
        const clock = movableClock();
        const ca = await VaultIntermediateCa.open(
          vaultConfig(vault, { mount: "pki_rot", pollInterval: "1s" }),
          {
            clock,
            log: testLog,
            timer: false,
          },
        );
        try {
          const path = await kernelPath(ca, clock);
          const before = await path.ask();
          issued(before, "before rotation");
          const rotated = await vaultRequest(vault, "POST", "pki_rot/root/rotate/internal", {
            common_name: "Test Root pki_rot 2",
            key_type: "rsa",
            key_bits: 2048,
            ttl: "87600h",
          });
          const newId = String((rotated.data as Record<string, unknown>).issuer_id);
          await vaultRequest(vault, "POST", "pki_rot/root/replace", { default: newId });
          ca.session.pollSoon();
          await ca.maintain();
          assert.equal(ca.status().renewals, 1, "renewed because the issuer changed");
          const after = await path.ask();
          issued(after, "after rotation");
          const anchors = (await ca.trustBundle()).map(certOf);
          const subjects = anchors.map((c) => c.subject).sort();
          assert.deepEqual(subjects, ["CN=Test Root pki_rot", "CN=Test Root pki_rot 2"]);
          assert.equal(after.check.chain.at(-1)?.issuer, "CN=Test Root pki_rot 2");
          const oldLeaf = before.check.leaf!;
          const oldInter = before.check.chain[0]!;
          assert.ok(await oldLeaf.verify({ publicKey: oldInter.publicKey, signatureOnly: true }));
          assert.ok(
            anchors.some((r) => r.subject === oldInter.issuer),
            "the old root is still trusted",
          );
        } finally {
          await ca.dispose();
        }
      },
    );

    await t.step(
      "a non-RSA Vault root with the kernel driver: CapabilityError at start",
      async () => {
        await setUpPki(vault, "pki_ec", "ec");
        const e = await VaultIntermediateCa.open(vaultConfig(vault, { mount: "pki_ec" }), {
          clock: movableClock(),
          log: testLog,
          timer: false,
        }).then(() => undefined, (e: Error) => e);
        assert.ok(e instanceof CapabilityError, String(e));
        assert.match(e.message, /"CN=Test Root pki_ec" \(EC\) is not RSA.*key_type=rsa/);
        const ok = await VaultIntermediateCa.open(
          vaultConfig(vault, { mount: "pki_ec", kernelDriver: false }),
          {
            clock: movableClock(),
            log: testLog,
            timer: false,
          },
        );
        await ok.dispose();
      },
    );

    await t.step(
      "Vault stopped mid-run: intermediate signs on, leaf mode refuses at once",
      async () => {
        const clock = movableClock();
        const opts = { clock, log: testLog, timer: false, metrics: new MetricsRegistry() };
        const inter = await VaultIntermediateCa.open(
          vaultConfig(vault, { requestTimeout: "1s" }),
          opts,
        );
        const leaf = await VaultLeafCa.open(
          vaultConfig(vault, { mode: "leaf", leaf: { role: "camblet" } }),
          opts,
        );
        try {
          const [pi, pl] = [await kernelPath(inter, clock), await kernelPath(leaf, clock)];
          await vault.stop();
          issued(await pi.ask(), "intermediate mode, Vault stopped");
          refused(
            await pl.ask(),
            "leaf mode, Vault stopped",
            /Cannot sign CSR with Vault .*(refused|ECONNREFUSED|connect)/i,
          );
          clock.advance(40 * HOUR);
          await inter.maintain();
          assert.equal(inter.status().failures, 1);
          assert.ok(
            opts.metrics.gauge("camblet_ca_signer_expiry_seconds", "").get({ ca: "vault" })! > 0,
          );
          issued(await pi.ask(), "intermediate mode after the renewal failed");
          clock.advance(40 * HOUR);
          refused(await pi.ask(), "intermediate expired, Vault stopped", /intermediate expired/);
        } finally {
          await inter.dispose();
          await leaf.dispose();
        }
      },
    );
  } finally {
    await proxy.close();
    await vault.stop();
  }
});
