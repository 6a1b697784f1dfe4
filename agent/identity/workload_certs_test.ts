import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import { WorkloadCertificates, type WorkloadRequester } from "./workload_certs.ts";
import { IdentityManager, IssuanceRefusedError } from "./manager.ts";
import { AuditLog } from "./audit.ts";
import { MetricsRegistry } from "../../plugins/sdk/metrics.ts";
import { logger } from "../log.ts";
import { compilePayloads } from "../policy/payloads.ts";
import { parsePolicyFile } from "../policy/parse_policy.ts";
import type { IssuanceHook } from "../opa/issuance_hook.ts";
import { SelfSignedCa } from "../../plugins/ca/self_signed/self_signed_ca.ts";
import { parseSelfSignedConfig } from "../../plugins/ca/self_signed/config.ts";
import type { CertificateAuthority } from "../../plugins/ca/types.ts";
import type { CertificateBundle, IdentitySource } from "../../driver/proxy/types.ts";
import type { KernelPayloads, TaskContext } from "../../driver/payloads.ts";
import { until } from "../../tests/fakes/until.ts";

const TD = "acme.test";
const WEB = `spiffe://${TD}/web`;
const API = `spiffe://${TD}/api`;
const MIN = 60_000;

const POLICIES = `
- selectors: [{ process:name: web }]
  certificate: { workloadID: web, ttl: 1h }
- selectors: [{ process:name: api }]
  certificate: { workloadID: api, ttl: 1h }
`;

/** Compiled as the daemon does: parse the YAML, compile the kernel payloads. */
function compiledPolicies(): KernelPayloads {
  const parsed = parsePolicyFile("policies.yaml", POLICIES, { trustDomain: TD });
  assert.deepEqual(parsed.problems, []);
  const compiled = compilePayloads({
    trustDomain: TD,
    policies: parsed.policies,
    services: [],
    resolutions: { addresses: new Map() },
  });
  assert.deepEqual(compiled.problems, []);
  return compiled.payloads;
}

function requester(name: string): WorkloadRequester {
  const task: TaskContext = {
    uid: 1000,
    gid: 1000,
    pid: 4242,
    command_path: `/usr/bin/${name}`,
    command_name: name,
    cgroup_path: "/",
    namespace_ids: {} as TaskContext["namespace_ids"],
  };
  return { task, labels: [`process:name=${name}`] };
}

/** The real self-signed CA, counting sign calls; `failNext` makes the next calls fail. */
class CountingCa implements CertificateAuthority {
  calls = 0;
  failNext = 0;
  constructor(readonly inner: SelfSignedCa) {}
  get name() {
    return this.inner.name;
  }
  get maxTtlMs() {
    return this.inner.maxTtlMs;
  }
  async sign(...args: Parameters<CertificateAuthority["sign"]>) {
    this.calls++;
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error("CA unavailable (test)");
    }
    return await this.inner.sign(...args);
  }
  trustBundle() {
    return this.inner.trustBundle();
  }
}

/** A CA, policies and an identity manager on a clock the test moves. */
async function environment(options: { intermediate?: boolean } = {}) {
  const dir = await Deno.makeTempDir({ prefix: "workload-certs-" });
  const clock = {
    t: Date.now(),
    now() {
      return this.t;
    },
  };
  const parsed = parseSelfSignedConfig({
    caPemPath: `${dir}/ca.pem`,
    watch: false,
    intermediate: options.intermediate ?? false,
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  const inner = await SelfSignedCa.open(parsed.value, {
    clock,
    log: logger("test"),
    maintenanceIntervalMs: 0,
  });
  const ca = new CountingCa(inner);
  const payloads = compiledPolicies();
  const audit = new AuditLog();
  const metrics = new MetricsRegistry();
  let hook: IssuanceHook | undefined;
  const manager = await IdentityManager.create({
    ca,
    trustDomain: TD,
    payloads: () => payloads,
    labelsFor: () => Promise.reject(new Error("proxy mode gives labels directly")),
    defaultCertTtlMs: 24 * 60 * MIN,
    clock,
    audit,
    metrics,
    issuanceHook: () => hook,
  });
  const certs = (extra: Partial<ConstructorParameters<typeof WorkloadCertificates>[0]> = {}) =>
    new WorkloadCertificates({ identity: manager, clock, metrics, ...extra });
  return {
    ca,
    clock,
    audit,
    metrics,
    manager,
    certs,
    setHook: (h: IssuanceHook | undefined) => (hook = h),
    async dispose() {
      await inner.dispose();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Waits (real time) until `f` is true. */

const pemBlocks = (pem: string) =>
  pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/g) ?? [];

/** The leaf carries the SPIFFE ID, matches the key, and chains to the bundle through chainPem. */
function assertUsable(b: CertificateBundle, spiffeId: string, keyAlgorithm: "rsa" | "ec") {
  assert.match(b.keyPem, /^-----BEGIN PRIVATE KEY-----\n/, "PKCS#8");
  const leaf = new X509Certificate(b.certPem);
  assert.equal(leaf.subjectAltName, `URI:${spiffeId}`);
  const key = createPrivateKey(b.keyPem);
  assert.equal(key.asymmetricKeyType, keyAlgorithm);
  assert.ok(leaf.checkPrivateKey(key), "the key is the certificate's");
  const chain = pemBlocks(b.chainPem).map((p) => new X509Certificate(p));
  const anchors = pemBlocks(b.bundlePem).map((p) => new X509Certificate(p));
  assert.ok(anchors.length > 0);
  let child = leaf;
  for (const next of chain) {
    assert.ok(child.verify(next.publicKey), `${child.subject} is signed by ${next.subject}`);
    child = next;
  }
  assert.ok(
    anchors.some((a) => child.checkIssued(a) && child.verify(a.publicKey)),
    "the chain ends at a trust anchor",
  );
  return leaf;
}

Deno.test("WorkloadCertificates", async (t) => {
  const env = await environment();
  try {
    await t.step(
      "issues an RSA-2048 certificate for the SPIFFE ID, usable with keyPem",
      async () => {
        env.clock.t = Date.now();
        const certs = env.certs();
        try {
          const b = await certs.prepare(WEB, requester("web"));
          const leaf = assertUsable(b, WEB, "rsa");
          assert.equal(createPrivateKey(b.keyPem).asymmetricKeyDetails?.modulusLength, 2048);
          assert.equal(b.chainPem, "", "the root signs directly");
          // X.509 times have whole seconds: the policy's 1h, rounded down.
          const notAfter = Math.floor((env.clock.t + 60 * MIN) / 1000) * 1000;
          assert.equal(new Date(leaf.validTo).getTime(), notAfter);
          assert.equal(certs.certificateFor(WEB), b, "cached");
          assert.equal(await certs.prepare(WEB, requester("web")), b, "cached");
          assert.equal(certs.size, 1);
          const [s] = certs.stats();
          assert.deepEqual(Object.keys(s!).sort(), [
            "failures",
            "notAfter",
            "renewAt",
            "renewing",
            "serial",
            "spiffeId",
          ]);
          assert.equal(s!.spiffeId, WEB);
          assert.equal(s!.serial, leaf.serialNumber.toLowerCase());
          assert.equal(s!.notAfter, new Date(notAfter).toISOString());
          assert.equal(
            Date.parse(s!.renewAt),
            env.clock.t + Math.floor((notAfter - env.clock.t) / 2),
            "half of the lifetime from receipt",
          );
          assert.doesNotMatch(JSON.stringify(certs.stats()), /PRIVATE KEY|BEGIN/);
          const rec = env.audit.entries().at(-1)!;
          assert.deepEqual(
            [rec.outcome, rec.via, rec.spiffeId, rec.policyId !== undefined, rec.task.command_name],
            ["issued", "proxy", WEB, true, "web"],
          );
          assert.equal(
            env.metrics.counter("camblet_csr_sign_total", "").get({
              result: "issued",
              via: "proxy",
            }),
            1,
          );
          assert.equal(
            env.metrics.counter("camblet_csr_sign_total", "").get({ result: "issued" }),
            0,
          );
        } finally {
          await certs.dispose();
        }
      },
    );

    await t.step("issues ECDSA P-256 keys with keyType ecdsa", async () => {
      env.clock.t = Date.now();
      const certs = env.certs({ keyType: "ecdsa" });
      try {
        const b = await certs.prepare(API, requester("api"));
        assertUsable(b, API, "ec");
        assert.equal(createPrivateKey(b.keyPem).asymmetricKeyDetails?.namedCurve, "prime256v1");
      } finally {
        await certs.dispose();
      }
    });

    await t.step("concurrent prepares share one issuance (one CA call)", async () => {
      env.clock.t = Date.now();
      const certs = env.certs();
      try {
        const before = env.ca.calls;
        const all = await Promise.all(
          Array.from({ length: 8 }, () => certs.prepare(WEB, requester("web"))),
        );
        assert.equal(env.ca.calls - before, 1);
        assert.ok(all.every((b) => b === all[0]));
        // certificateFor during an issuance gets the same issuance.
        const pending = certs.prepare(API, requester("api"));
        const viaSource = certs.certificateFor(API);
        assert.ok(viaSource instanceof Promise);
        assert.equal(await viaSource, await pending);
        assert.equal(env.ca.calls - before, 2);
      } finally {
        await certs.dispose();
      }
    });

    await t.step("a SPIFFE ID the policies do not assign is refused, nothing cached", async () => {
      env.clock.t = Date.now();
      const certs = env.certs();
      try {
        const before = env.ca.calls;
        await assert.rejects(certs.prepare(WEB, requester("api")), (e: Error) => {
          assert.ok(e instanceof IssuanceRefusedError);
          assert.equal(e.reason, "not_assignable");
          assert.equal(
            e.message,
            `Cannot sign CSR: no loaded policy assigns "${WEB}" to the requesting process`,
          );
          return true;
        });
        await assert.rejects(
          certs.prepare("spiffe://other.test/web", requester("web")),
          /outside trust domain "acme.test"/,
        );
        assert.equal(env.ca.calls, before, "the CA is not asked");
        assert.equal(certs.size, 0);
        assert.deepEqual(certs.stats(), []);
        assert.throws(
          () => certs.certificateFor(WEB),
          /"spiffe:\/\/acme.test\/web": it was never prepared/,
        );
        const rec = env.audit.entries().at(-1)!;
        assert.deepEqual([rec.outcome, rec.via, rec.reason], [
          "refused",
          "proxy",
          "foreign_trust_domain",
        ]);
        assert.equal(
          env.metrics.counter("camblet_csr_sign_total", "")
            .get({ result: "refused", reason: "not_assignable", via: "proxy" }),
          1,
        );
        // The refusal did not poison the cache: the right requester gets it.
        assertUsable(await certs.prepare(WEB, requester("web")), WEB, "rsa");
      } finally {
        await certs.dispose();
      }
    });

    await t.step("the issuance policy can deny; its reasons are in the error", async () => {
      env.clock.t = Date.now();
      const certs = env.certs();
      env.setHook({
        entrypoint: "camblet/issuance/decision",
        decide: (input) =>
          input.spiffe_id === API
            ? { allow: false, reasons: ["api is frozen"] }
            : { allow: true, reasons: [] },
      });
      try {
        await assert.rejects(certs.prepare(API, requester("api")), (e: Error) => {
          assert.ok(e instanceof IssuanceRefusedError);
          assert.equal(e.reason, "policy_denied");
          assert.match(e.message, /denies "spiffe:\/\/acme.test\/api": api is frozen/);
          return true;
        });
        assert.equal(certs.size, 0);
        await certs.prepare(WEB, requester("web"));
      } finally {
        env.setHook(undefined);
        await certs.dispose();
      }
    });

    await t.step(
      "renews once half the lifetime passed, serving the old one meanwhile",
      async () => {
        env.clock.t = Date.now();
        const certs = env.certs();
        try {
          const before = env.ca.calls;
          const old = await certs.prepare(WEB, requester("web"));
          env.clock.t += 29 * MIN;
          assert.equal(await certs.prepare(WEB, requester("web")), old, "not due yet");
          assert.equal(env.ca.calls - before, 1);
          env.clock.t += 2 * MIN;
          const asked: string[][] = [];
          env.setHook({
            entrypoint: "camblet/issuance/decision",
            decide: (input) => (asked.push(input.labels), { allow: true, reasons: [] }),
          });
          const other = { ...requester("web"), labels: ["process:name=web", "extra=1"] };
          assert.equal(await certs.prepare(WEB, other), old, "due: the old one, at once");
          assert.equal(certs.certificateFor(WEB), old, "still the old one while renewing");
          assert.equal(certs.stats()[0]!.renewing, true);
          await until(() => certs.certificateFor(WEB) !== old, "the renewed certificate");
          const fresh = certs.certificateFor(WEB) as CertificateBundle;
          assert.equal(env.ca.calls - before, 2, "one renewal for two callers");
          assert.deepEqual(asked, [other.labels], "renewed for the last requester");
          assert.notEqual(fresh.keyPem, old.keyPem, "a fresh key per issuance");
          assertUsable(fresh, WEB, "rsa");
          assert.equal(
            new Date(new X509Certificate(fresh.certPem).validTo).getTime(),
            Math.floor((env.clock.t + 60 * MIN) / 1000) * 1000,
          );
          const renewals = env.metrics.counter("camblet_workload_cert_renewals_total", "");
          assert.equal(renewals.get({ result: "ok" }), 1);
        } finally {
          env.setHook(undefined);
          await certs.dispose();
        }
      },
    );

    await t.step(
      "a failed renewal keeps the old certificate and retries with backoff",
      async () => {
        env.clock.t = Date.now();
        const certs = env.certs({ retryMs: 20 });
        try {
          const before = env.ca.calls;
          const old = await certs.prepare(WEB, requester("web"));
          env.ca.failNext = 2;
          env.clock.t += 31 * MIN;
          assert.equal(await certs.prepare(WEB, requester("web")), old);
          await until(() => certs.stats()[0]!.failures === 1, "the first failure");
          assert.equal(certs.certificateFor(WEB), old, "the old one while retrying");
          assert.equal(
            await certs.prepare(WEB, requester("web")),
            old,
            "no extra attempt in backoff",
          );
          assert.match(certs.stats()[0]!.lastError!, /CA unavailable \(test\)/);
          await until(() => certs.certificateFor(WEB) !== old, "a successful retry");
          assert.equal(env.ca.calls - before, 4, "issue, two failed renewals, one good");
          assert.equal(certs.stats()[0]!.failures, 0);
          assert.equal(certs.stats()[0]!.lastError, undefined);
          assertUsable(certs.certificateFor(WEB) as CertificateBundle, WEB, "rsa");
        } finally {
          await certs.dispose();
        }
      },
    );

    await t.step("an expired certificate is never served", async () => {
      env.clock.t = Date.now();
      const certs = env.certs({ retryMs: 60_000 });
      try {
        const old = await certs.prepare(WEB, requester("web"));
        env.ca.failNext = 1;
        env.clock.t += 61 * MIN;
        assert.throws(() => certs.certificateFor(WEB), /it expired at .*Z/);
        await assert.rejects(certs.prepare(WEB, requester("web")), /CA unavailable \(test\)/);
        assert.throws(
          () => certs.certificateFor(WEB),
          /expired at .*; renewal failing: CA unavailable \(test\)/,
        );
        assert.equal(certs.size, 1, "kept: it renews when the CA is back");
        const fresh = await certs.prepare(WEB, requester("web"));
        assert.notEqual(fresh, old);
        assert.ok(new Date(new X509Certificate(fresh.certPem).validTo).getTime() > env.clock.t);
        assert.equal(certs.certificateFor(WEB), fresh);
      } finally {
        await certs.dispose();
      }
    });

    await t.step("forget, dispose", async () => {
      env.clock.t = Date.now();
      const certs = env.certs();
      await certs.prepare(WEB, requester("web"));
      assert.equal(certs.forget(WEB), true);
      assert.equal(certs.forget(WEB), false);
      assert.equal(certs.size, 0);
      assert.throws(() => certs.certificateFor(WEB), /never prepared/);
      await certs.prepare(WEB, requester("web"));
      await certs.dispose();
      assert.equal(certs.size, 0);
      await assert.rejects(certs.prepare(WEB, requester("web")), /disposed/);
      assert.throws(
        () => new WorkloadCertificates({ identity: env.manager, renewAt: 1 }),
        RangeError,
      );
    });
  } finally {
    await env.dispose();
  }
});

Deno.test("WorkloadCertificates material completes a mutual TLS handshake", async () => {
  const env = await environment({ intermediate: true });
  const certs = env.certs();
  try {
    const server = await certs.prepare(WEB, requester("web"));
    const client = await certs.prepare(API, requester("api"));
    const source: IdentitySource = certs; // what driver/proxy consumes
    assert.equal(await source.certificateFor(WEB), server);
    assert.equal(pemBlocks(server.chainPem).length, 1, "an intermediate is sent");
    assertUsable(server, WEB, "rsa");
    const cert = (b: CertificateBundle) => `${b.certPem}${b.chainPem}`;
    let peerOfServer = "";
    const srv = tls.createServer({
      key: server.keyPem,
      cert: cert(server),
      ca: server.bundlePem,
      requestCert: true,
      rejectUnauthorized: true,
    }, (socket) => {
      peerOfServer = socket.getPeerCertificate().subjectaltname ?? "";
      socket.end("hello");
    });
    await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = srv.address() as AddressInfo;
      const received = await new Promise<{ data: string; peer: string; authorized: boolean }>(
        (resolve, reject) => {
          let data = "";
          const socket = tls.connect({
            host: "127.0.0.1",
            port,
            key: client.keyPem,
            cert: cert(client),
            ca: client.bundlePem,
            // SPIFFE certificates have no DNS name: the SPIFFE ID is what is checked.
            checkServerIdentity: () => undefined,
          }, () => {
            const peer = socket.getPeerCertificate().subjectaltname ?? "";
            socket.on("data", (d) => (data += d));
            socket.on("end", () => {
              socket.end();
              resolve({ data, peer, authorized: socket.authorized });
            });
          });
          socket.on("error", reject);
        },
      );
      assert.deepEqual(received, { data: "hello", peer: `URI:${WEB}`, authorized: true });
      assert.equal(peerOfServer, `URI:${API}`);
    } finally {
      await new Promise((resolve) => srv.close(resolve));
    }
  } finally {
    await certs.dispose();
    await env.dispose();
  }
});
