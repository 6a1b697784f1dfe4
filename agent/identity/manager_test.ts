import assert from "node:assert/strict";
import { IdentityManager, type IdentityManagerOptions, IssuanceRefusedError } from "./manager.ts";
import { checkKernelAnswer } from "../../driver/answer_check.ts";
import { AuditLog } from "./audit.ts";
import { MetricsRegistry } from "../../plugins/sdk/metrics.ts";
import { CapabilityError } from "../errors.ts";
import { logger } from "../log.ts";
import { SelfSignedCa } from "../../plugins/ca/self_signed/self_signed_ca.ts";
import { parseSelfSignedConfig } from "../../plugins/ca/self_signed/config.ts";
import { parseCsr } from "../../plugins/sdk/csr.ts";
import { x509 } from "../../plugins/sdk/x509.ts";
import {
  CAPTURE_TIME,
  captureCsrSign,
  capturePayloads,
  pki,
  taskLabels,
} from "../../tests/fakes/identity_capture.ts";
import { csrData, makeCsr } from "../../tests/fakes/identity_csr.ts";
import type { KernelPayloads } from "../../driver/payloads.ts";

const clock = { now: () => CAPTURE_TIME };
const H = 3_600_000;

async function openCa(dir: string, extra: Record<string, unknown> = {}) {
  const parsed = parseSelfSignedConfig({ caPemPath: `${dir}/ca.pem`, watch: false, ...extra });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return await SelfSignedCa.open(parsed.value, {
    clock,
    log: logger("test"),
    maintenanceIntervalMs: 0,
  });
}

Deno.test("identity manager", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "identity-" });
  const ca = await openCa(dir);
  const payloads = await capturePayloads();
  const web = await captureCsrSign("python3");
  const curl = await captureCsrSign("curl");
  const metrics = new MetricsRegistry();
  const audit = new AuditLog();
  let currentPayloads: KernelPayloads = payloads;
  const options: IdentityManagerOptions = {
    ca,
    trustDomain: "acme.test",
    payloads: () => currentPayloads,
    labelsFor: (task) => Promise.resolve(taskLabels(task)),
    defaultCertTtlMs: 24 * H,
    clock,
    audit,
    metrics,
  };
  const manager = await IdentityManager.create(options);
  const count = (labels: Record<string, string>) =>
    metrics.counter("camblet_csr_sign_total", "").get(labels);
  const refusedFor = async (data: string, task = web.task_context) => {
    const answer = await manager.signForKernel({ task, data });
    const check = await checkKernelAnswer(answer, { now: CAPTURE_TIME });
    assert.deepEqual(check.problems, [], "a refusal is a well-formed answer");
    assert.equal(check.trusted, false, "a refusal certificate is trusted by no anchor");
    const rec = audit.entries().at(-1)!;
    assert.equal(rec.outcome, "refused");
    return { check, rec };
  };

  try {
    await t.step(
      "issues the kernel's real request exactly (python3 → spiffe://acme.test/web)",
      async () => {
        const answer = await manager.signForKernel({
          id: web.id,
          task: web.task_context,
          data: web.data,
        });
        assert.doesNotMatch(answer, /\n/);
        assert.deepEqual(Object.keys(JSON.parse(answer)), [
          "certificate",
          "chain",
          "trust_anchors",
        ]);
        const check = await checkKernelAnswer(answer, { now: CAPTURE_TIME });
        assert.deepEqual(check.problems, []);
        assert.ok(check.trusted, check.untrustedReason);
        const leaf = check.leaf!;
        assert.equal(leaf.notAfter.getTime(), CAPTURE_TIME + H, "the policy's 3600s");
        assert.equal(leaf.subject, "CN=camblet-protected-workload");
        const rec = audit.entries().at(-1)!;
        assert.deepEqual(
          {
            outcome: rec.outcome,
            id: rec.requestId,
            spiffeId: rec.spiffeId,
            policy: rec.policyId,
            serial: rec.serial,
            pid: rec.task.pid,
          },
          {
            outcome: "issued",
            id: web.id,
            spiffeId: "spiffe://acme.test/web",
            policy: "web-policy",
            serial: leaf.serialNumber,
            pid: web.task_context.pid,
          },
        );
        assert.equal(rec.notAfter, leaf.notAfter.toISOString());
        assert.equal(count({ result: "issued" }), 1);
      },
    );

    await t.step("issues curl's request under curl-policy", async () => {
      const check = await checkKernelAnswer(
        await manager.signForKernel({ task: curl.task_context, data: curl.data }),
      );
      assert.ok(check.trusted);
      assert.equal(audit.entries().at(-1)!.policyId, "curl-policy");
    });

    await t.step("tampered CSR → refusal certificate for the CSR's key, valid 60 s", async () => {
      const data = JSON.parse(web.data);
      data.csr = data.csr.replace("Y21lLnRlc3Qvd2Vi", "Y21lLnRlc3Qvd2Vj"); // acme.test/web → /wec
      assert.notEqual(data.csr, JSON.parse(web.data).csr);
      const { check, rec } = await refusedFor(JSON.stringify(data));
      assert.equal(rec.reason, "csr_signature");
      const csrKey = parseCsr(JSON.parse(web.data).csr).publicKey.rawData;
      assert.deepEqual(new Uint8Array(check.leaf!.publicKey.rawData), new Uint8Array(csrKey));
      assert.equal(check.leaf!.notAfter.getTime(), CAPTURE_TIME + 60_000);
      assert.equal(count({ result: "refused", reason: "csr_signature" }), 1);
    });

    await t.step("foreign trust domain", async () => {
      const { rec } = await refusedFor(
        csrData(await makeCsr({ uris: ["spiffe://other.test/web"] }), "3600s"),
      );
      assert.equal(rec.reason, "foreign_trust_domain");
      assert.equal(
        rec.detail,
        'Cannot sign CSR: URI SAN "spiffe://other.test/web" is outside trust domain "acme.test"',
      );
    });

    await t.step("two URI SANs, no URI SAN, an IP SAN, a URI that is not a SPIFFE ID", async () => {
      const two = await refusedFor(
        csrData(await makeCsr({ uris: ["spiffe://acme.test/web", "spiffe://acme.test/curl"] })),
      );
      assert.equal(two.rec.reason, "uri_san_count");
      assert.match(two.rec.detail!, /it has 2 URI SANs/);
      const none = await refusedFor(csrData(await makeCsr({ dnsNames: ["web.acme.test"] })));
      assert.equal(none.rec.reason, "uri_san_count");
      assert.match(none.rec.detail!, /it has 0 URI SANs \(none\)/);
      const ip = await refusedFor(
        csrData(await makeCsr({ uris: ["spiffe://acme.test/web"], ips: ["10.0.0.1"] })),
      );
      assert.equal(ip.rec.reason, "unexpected_san");
      const http = await refusedFor(csrData(await makeCsr({ uris: ["https://acme.test/web"] })));
      assert.equal(http.rec.reason, "not_spiffe_id");
    });

    await t.step("SPIFFE ID the policies do not give this process", async () => {
      const admin = await refusedFor(
        csrData(await makeCsr({ uris: ["spiffe://acme.test/admin"] }), "3600s"),
      );
      assert.equal(admin.rec.reason, "not_assignable");
      // curl asking for the server's identity.
      const asWeb = await refusedFor(web.data, curl.task_context);
      assert.equal(asWeb.rec.reason, "not_assignable");
      assert.equal(
        asWeb.rec.detail,
        'Cannot sign CSR: no loaded policy assigns "spiffe://acme.test/web" to the requesting process',
      );
    });

    await t.step("DNS SAN not in the policy", async () => {
      const { rec } = await refusedFor(
        csrData(
          await makeCsr({ uris: ["spiffe://acme.test/web"], dnsNames: ["evil.example"] }),
          "3600s",
        ),
      );
      assert.equal(rec.reason, "dns_not_allowed");
    });

    await t.step("TTL above the cap; a bad TTL", async () => {
      const data = JSON.parse(web.data);
      data.ttl = "7200s";
      const above = await refusedFor(JSON.stringify(data));
      assert.equal(above.rec.reason, "ttl_above_cap");
      assert.match(above.rec.detail!, /TTL "7200s" is above the cap of 3600s/);
      data.ttl = "soon";
      assert.equal((await refusedFor(JSON.stringify(data))).rec.reason, "bad_ttl");
    });

    await t.step(
      "no ttl from the kernel: --default-cert-ttl, clamped to the CA maximum",
      async () => {
        const noTtl = structuredClone(payloads);
        for (const p of noTtl.load_policies.policies) delete p.certificate.ttl;
        currentPayloads = noTtl;
        try {
          const data = JSON.parse(web.data);
          delete data.ttl;
          const check = await checkKernelAnswer(
            await manager.signForKernel({ task: web.task_context, data: JSON.stringify(data) }),
          );
          assert.ok(check.trusted);
          // default 24h, CA maximum (maxCertTtl default) 168h: 24h.
          assert.equal(check.leaf!.notAfter.getTime(), CAPTURE_TIME + 24 * H);
          const tight = await IdentityManager.create({ ...options, defaultCertTtlMs: 1000 * H });
          const c2 = await checkKernelAnswer(
            await tight.signForKernel({ task: web.task_context, data: JSON.stringify(data) }),
          );
          assert.equal(
            c2.leaf!.notAfter.getTime(),
            CAPTURE_TIME + ca.maxTtlMs,
            "clamped to the CA's 168h",
          );
        } finally {
          currentPayloads = payloads;
        }
      },
    );

    await t.step("unreadable requests still get a certificate for the kernel's key", async () => {
      const garbage = await refusedFor("{not json");
      assert.equal(garbage.rec.reason, "bad_request");
      const kernelKey = new Uint8Array(parseCsr(await pki("csr-web.pem")).publicKey.rawData);
      assert.deepEqual(
        new Uint8Array(garbage.check.leaf!.publicKey.rawData),
        kernelKey,
        "the last kernel key seen",
      );
      const badCsr = await refusedFor(
        JSON.stringify({
          csr: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        }),
      );
      assert.equal(badCsr.rec.reason, "bad_csr");
      assert.equal((await refusedFor(JSON.stringify({ ttl: "1s" }))).rec.reason, "bad_request");
    });

    await t.step("labels or CA too slow: refused within the budget", async () => {
      const slow = await IdentityManager.create({
        ...options,
        budgetMs: 200,
        labelsFor: (_task, signal) =>
          new Promise((resolve, reject) => {
            const t = setTimeout(() => resolve([]), 5000);
            signal.addEventListener("abort", () => (clearTimeout(t), reject(new Error("aborted"))));
          }),
      });
      const started = performance.now();
      const check = await checkKernelAnswer(
        await slow.signForKernel({ task: web.task_context, data: web.data }),
      );
      assert.ok(performance.now() - started < 600);
      assert.equal(check.trusted, false);
      assert.equal(audit.entries().at(-1)!.reason, "labels_unavailable");
      const throwing = await IdentityManager.create({
        ...options,
        labelsFor: () => {
          throw new Error("attestation broke");
        },
      });
      const answer = await throwing.signForKernel({ task: web.task_context, data: web.data });
      assert.equal((await checkKernelAnswer(answer)).trusted, false);
      assert.match(audit.entries().at(-1)!.detail!, /attestation broke/);
    });

    await t.step("an EC root with the kernel driver is a CapabilityError at start", async () => {
      const ecDir = await Deno.makeTempDir({ dir });
      const sh = (args: string[]) =>
        new Deno.Command("openssl", { args, cwd: ecDir, stdout: "null", stderr: "null" }).output();
      await sh([
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "k.pem",
      ]);
      await sh([
        "req",
        "-x509",
        "-new",
        "-key",
        "k.pem",
        "-subj",
        "/CN=EC root",
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
        "-out",
        "c.pem",
      ]);
      await Deno.writeTextFile(
        `${ecDir}/ca.pem`,
        (await Deno.readTextFile(`${ecDir}/c.pem`)) + (await Deno.readTextFile(`${ecDir}/k.pem`)),
      );
      const ec = await openCa(ecDir);
      try {
        await assert.rejects(IdentityManager.create({ ...options, ca: ec }), (e: Error) => {
          assert.ok(e instanceof CapabilityError);
          assert.match(
            e.message,
            /^Cannot use CA "self-signed": Cannot use trust anchor "CN=EC root" with camblet-driver: its key is not RSA/,
          );
          return true;
        });
        await IdentityManager.create({ ...options, ca: ec, kernelDriver: false });
      } finally {
        await ec.dispose();
      }
    });

    await t.step("metrics and audit are readable", () => {
      const text = metrics.toPrometheus();
      assert.match(text, /camblet_csr_sign_total\{result="issued"\} \d+/);
      assert.match(text, /camblet_csr_sign_total\{reason="not_assignable",result="refused"\} 2/);
      assert.match(text, /camblet_csr_sign_duration_seconds_count\{result="refused"\} \d+/);
      assert.ok(audit.entries().length > 10);
    });

    await t.step("issueForWorkload: the same checks, DER out, refusals thrown", async () => {
      const csrDer = new Uint8Array(parseCsr(JSON.parse(web.data).csr).rawData);
      const labels = taskLabels(web.task_context);
      const issued = await manager.issueForWorkload({ task: web.task_context, labels, csrDer });
      assert.equal(issued.spiffeId, "spiffe://acme.test/web");
      assert.equal(issued.policyId, "web-policy");
      assert.equal(issued.notAfter.getTime(), CAPTURE_TIME + H, "no ttl asked: the policy's 3600s");
      assert.deepEqual(issued.trustAnchors, await ca.trustBundle());
      const leaf = new x509.X509Certificate(issued.certificate.slice().buffer as ArrayBuffer);
      assert.equal(leaf.serialNumber, issued.serial);
      let rec = audit.entries().at(-1)!;
      assert.deepEqual([rec.outcome, rec.via, rec.serial], ["issued", "proxy", issued.serial]);
      assert.equal(count({ result: "issued", via: "proxy" }), 1);

      await assert.rejects(
        manager.issueForWorkload({
          task: curl.task_context,
          labels: taskLabels(curl.task_context),
          csrDer,
        }),
        (e: Error) => {
          assert.ok(e instanceof IssuanceRefusedError);
          assert.equal(e.name, "IssuanceRefusedError");
          assert.equal(e.reason, "not_assignable");
          assert.equal(e.spiffeId, "spiffe://acme.test/web");
          assert.match(e.message, /no loaded policy assigns "spiffe:\/\/acme.test\/web"/);
          return true;
        },
      );
      rec = audit.entries().at(-1)!;
      assert.deepEqual([rec.outcome, rec.via, rec.reason], ["refused", "proxy", "not_assignable"]);
      assert.equal(rec.serial, undefined, "no refusal certificate");
      assert.equal(count({ result: "refused", reason: "not_assignable", via: "proxy" }), 1);
      await assert.rejects(
        manager.issueForWorkload({ task: web.task_context, labels, csrDer: new Uint8Array(8) }),
        (e: Error) => e instanceof IssuanceRefusedError && e.reason === "bad_csr",
      );

      const hanging = await IdentityManager.create({
        ...options,
        workloadBudgetMs: 50,
        ca: {
          name: "hanging",
          maxTtlMs: ca.maxTtlMs,
          trustBundle: () => ca.trustBundle(),
          sign: (_request, signal) =>
            new Promise((_resolve, reject) =>
              signal.addEventListener("abort", () => reject(signal.reason))
            ),
        },
      });
      await assert.rejects(
        hanging.issueForWorkload({ task: web.task_context, labels, csrDer }),
        /^IssuanceRefusedError: Cannot sign CSR: CA "hanging" did not answer within 50 ms$/,
      );
    });
  } finally {
    await ca.dispose();
    await Deno.remove(dir, { recursive: true });
  }
  assert.ok(x509);
});
