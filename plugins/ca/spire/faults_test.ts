/**
 * Faults against a real SPIRE deployment, seen from the kernel: the identity manager in front of
 * the plugin answers every `csr_sign` within the deadline, never with an error; trusted leaves
 * while the downstream CA is valid, refusal certificates once it is not.
 */
import assert from "node:assert/strict";
import { skip } from "../../../tests/_skip.ts";
import { peerMissing } from "../../../tests/peers/ensure_peer.ts";
import { join } from "node:path";
import { spireServer, startSpire } from "../../../tests/peers/mod.ts";
import { DelayProxy } from "../../../tests/fakes/ca_delay_proxy.ts";
import { type KernelAsk, kernelPath } from "../../../tests/fakes/ca_kernel_path.ts";
import { MetricsRegistry } from "../../sdk/metrics.ts";
import { CapabilityError } from "../../sdk/errors.ts";
import { certOf } from "../../sdk/ca_chain.ts";
import { createRootCa } from "../../sdk/x509.ts";
import { encodePem } from "../../sdk/pem.ts";
import { generateRsaKeyPair } from "../../sdk/keys.ts";
import { SpireCa } from "./spire_ca.ts";
import { SELF, spireConfig, startSpireForAgent, TD, testLog } from "./_test_spire.ts";

// Needs a peer that `deno task peers` builds; tests never build one.
const ignore = skip(peerMissing("spire-server", "spire-agent"));

const HOUR = 3_600_000;
const AGENT_ID = `spiffe://${TD}/camblet-agent`;

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

async function federatedRoot(name: string, ec = false): Promise<string> {
  const now = Date.now();
  const keys = ec
    ? await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
      "sign",
      "verify",
    ]) as CryptoKeyPair
    : await generateRsaKeyPair(2048);
  const root = await createRootCa({
    commonName: name,
    keys,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 24 * HOUR),
  });
  return encodePem("CERTIFICATE", new Uint8Array(root.certificate.rawData));
}

async function until(check: () => Promise<boolean>, what: string, ms = 20_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test("spire faults: what issuance does", {
  ignore,
}, async (t) => {
  const spire = await startSpire({ trustDomain: TD });
  const [host, port] = spire.serverAddress.split(":");
  const proxy = DelayProxy.start({ target: { hostname: host!, port: Number(port) } });
  const sock = ["-socketPath", spire.serverSocket];
  const clock = movableClock();
  const metrics = new MetricsRegistry();
  let ca: SpireCa | undefined;
  try {
    const bundleFile = join(spire.dir, "other.pem");
    await Deno.writeTextFile(
      bundleFile,
      (await federatedRoot("Other RSA Root")) + (await federatedRoot("Other EC Root", true)),
    );
    await spireServer(spire, [
      "bundle",
      "set",
      ...sock,
      "-id",
      "spiffe://other.test",
      "-path",
      bundleFile,
    ]);
    const entryOut = await spireServer(spire, [
      "entry",
      "create",
      ...sock,
      "-output",
      "json",
      "-parentID",
      spire.agentId,
      "-spiffeID",
      AGENT_ID,
      "-selector",
      SELF,
      "-downstream",
      "-federatesWith",
      "spiffe://other.test",
    ]);
    const entryId =
      (JSON.parse(entryOut) as { results: { entry: { id: string } }[] }).results[0]!.entry.id;
    await spireServer(spire, [
      "entry",
      "create",
      ...sock,
      "-parentID",
      spire.agentId,
      "-spiffeID",
      `spiffe://${TD}/plain`,
      "-selector",
      SELF,
    ]);
    ca = await SpireCa.open(
      spireConfig(spire, { serverAddress: proxy.address, svidId: AGENT_ID, caTtl: "2h" }),
      { clock, log: testLog, metrics, trustDomain: TD, timer: false },
    );
    const path = await kernelPath(ca, clock);

    await t.step(
      "trust anchors: SPIRE's bundle and federated RSA roots; non-RSA roots left out; kept current",
      async () => {
        const subjects = async () => (await ca!.trustBundle()).map((d) => certOf(d).subject).sort();
        const first = await subjects();
        assert.ok(first.includes("CN=Other RSA Root"), first.join(" | "));
        assert.ok(
          !first.includes("CN=Other EC Root"),
          "the EC root is left out with the kernel driver",
        );
        assert.ok(first.some((s) => s.includes("O=SPIFFE")), "SPIRE's own root");
        issued(await path.ask(), "with federated anchors");
        await Deno.writeTextFile(bundleFile, await federatedRoot("Other RSA Root 2"));
        await spireServer(spire, [
          "bundle",
          "set",
          ...sock,
          "-id",
          "spiffe://other.test",
          "-path",
          bundleFile,
        ]);
        await until(
          async () => (await subjects()).includes("CN=Other RSA Root 2"),
          "the new federated bundle",
        );
        assert.ok(!(await subjects()).includes("CN=Other RSA Root"), "the replaced root is gone");
      },
    );

    await t.step("server slowed beyond 1 s: signing continues; the renewal times out", async () => {
      proxy.delayMs = 1500;
      proxy.dropAll();
      issued(await path.ask(), "server slow");
      clock.advance(61 * 60_000); // past half of the 2h CA
      await ca!.maintain();
      assert.ok(ca!.status().failures >= 1, "renewal failed");
      assert.equal(metrics.gauge("camblet_ca_upstream_up", "").get({ ca: "spire" }), 0);
      // Still signing, but the agent reports the CA down (with why) until the server answers.
      assert.deepEqual(ca!.health(), { ok: false, message: ca!.status().lastError });
      assert.ok(ca!.health().message, "the health answer says why");
      issued(await path.ask(), "after the failed renewal");
      proxy.delayMs = 0;
      proxy.dropAll();
    });

    await t.step("downstream CA at half-life: renewed once the server answers again", async () => {
      const before = certOf(ca!.caCertificate()).serialNumber;
      clock.advance(10_000); // past the retry backoff
      await ca!.maintain();
      assert.equal(ca!.status().renewals, 1, ca!.status().lastError);
      const after = certOf(ca!.caCertificate());
      assert.notEqual(after.serialNumber, before);
      const a = await path.ask();
      issued(a, "after renewal");
      assert.equal(
        a.check.chain[0]?.serialNumber,
        after.serialNumber,
        "leaves chain to the new CA",
      );
      assert.equal(metrics.gauge("camblet_ca_upstream_up", "").get({ ca: "spire" }), 1);
      assert.deepEqual(ca!.health(), { ok: true });
    });

    await t.step(
      "wrong credentials: an SVID without a downstream entry is refused at start",
      async () => {
        await assert.rejects(
          SpireCa.open(spireConfig(spire, { svidId: `spiffe://${TD}/plain` }), {
            clock,
            log: testLog,
            trustDomain: TD,
            timer: false,
          }),
          /Cannot get a downstream CA from the SPIRE server .*(denied|not a downstream)/i,
        );
        await assert.rejects(
          SpireCa.open(spireConfig(spire), {
            clock,
            log: testLog,
            trustDomain: "other.test",
            timer: false,
          }),
          /trust domain is "acme.test" .* agent's is "other.test"/,
        );
      },
    );

    await t.step(
      "downstream entry deleted (revoked): signing continues, renewals are denied",
      async () => {
        await spireServer(spire, ["entry", "delete", ...sock, "-entryID", entryId]);
        // Renewed at +61 min fake time: already past half of its (real-time) life, and valid.
        clock.advance(60_000);
        await ca!.maintain();
        assert.ok(ca!.status().failures >= 1);
        assert.match(ca!.status().lastError ?? "", /denied|not a downstream/i);
        issued(await path.ask(), "entry deleted, CA still valid");
      },
    );

    await t.step(
      "server stopped mid-run: signing continues; once the CA expired, refusals",
      async () => {
        Deno.kill(spire.serverPid, "SIGKILL");
        issued(await path.ask(), "server stopped");
        clock.advance(20_000);
        await ca!.maintain();
        assert.ok(ca!.status().failures >= 2);
        assert.equal(ca!.health().ok, false, "server stopped: down");
        clock.advance(2 * HOUR);
        refused(
          await path.ask(),
          "server stopped, CA expired",
          /downstream CA expired at .* could not be renewed/,
        );
      },
    );
  } finally {
    await ca?.dispose();
    await proxy.close();
    await spire.stop();
  }
});

Deno.test("spire: an EC SPIRE CA with the kernel driver is a CapabilityError naming ca_key_type", {
  ignore,
}, async () => {
  const { spire } = await startSpireForAgent({ caKeyType: "ec-p256" });
  try {
    const e = await SpireCa.open(spireConfig(spire), {
      clock: movableClock(),
      log: testLog,
      trustDomain: TD,
      timer: false,
    })
      .then(() => undefined, (e: Error) => e);
    assert.ok(e instanceof CapabilityError, String(e));
    assert.match(e.message, /\(EC\) is not RSA.*ca_key_type = "rsa-2048"/);
  } finally {
    await spire.stop();
  }
});
