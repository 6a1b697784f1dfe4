import assert from "node:assert/strict";
import { checkKernelAnswer } from "./answer_check.ts";
import { kernelCsrAnswer, kernelTrustAnchor } from "./kernel_answer.ts";
import { createRootCa, parsePem, x509 } from "../tests/fakes/test_pki.ts";
import {
  CAPTURE_DIR,
  CAPTURE_TIME,
  captureAnswer,
  captureCsrSign,
  pki,
} from "../tests/fakes/identity_capture.ts";

Deno.test("checkKernelAnswer", async (t) => {
  const request = await captureCsrSign("python3");
  const captured = await captureAnswer(request.id);

  await t.step(
    "the real module's accepted answer is well formed and trusted at capture time",
    async () => {
      const r = await checkKernelAnswer(captured, { now: CAPTURE_TIME });
      assert.deepEqual(r.problems, []);
      assert.ok(r.trusted, r.untrustedReason);
    },
  );

  await t.step("outside its validity it is not trusted (BearSSL checks dates)", async () => {
    const r = await checkKernelAnswer(captured, { now: CAPTURE_TIME + 2 * 3_600_000 });
    assert.equal(r.trusted, false);
    assert.match(r.untrustedReason!, /leaf is not valid at/);
  });

  await t.step("the ECDSA-root answers of the capture fail the RSA anchor check", async () => {
    const lines = (await Deno.readTextFile(`${CAPTURE_DIR}transcripts/ecdsa-root.jsonl`)).trim()
      .split("\n");
    const answer = lines.map((l) => JSON.parse(JSON.parse(l).raw)).find((m) =>
      m.command === "answer" && typeof m.answer === "string" && m.answer.includes("trust_anchors")
    ).answer as string;
    const r = await checkKernelAnswer(answer);
    assert.deepEqual(r.problems, [
      "trust_anchors[0].publicKey.RSA_N: missing or not a string",
      "trust_anchors[0].publicKey.RSA_E: missing or not a string",
    ]);
  });

  await t.step("shape problems are all listed", async () => {
    assert.deepEqual((await checkKernelAnswer("nope")).problems.length, 1);
    const r = await checkKernelAnswer(JSON.stringify({
      error: "x",
      certificate: { raw: "not base64!" },
      chain: {},
      trust_anchors: [],
    }));
    assert.deepEqual(r.problems, [
      'has an "error" field: a csr_sign error crashes the module',
      "certificate.raw: not standard padded base64 without newlines",
      "chain: missing or not an array",
      "trust_anchors: missing or empty",
    ]);
  });

  await t.step("an RSA-PSS signed leaf is flagged", async () => {
    const keys = await crypto.subtle.generateKey(
      {
        name: "RSA-PSS",
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      },
      true,
      ["sign", "verify"],
    ) as CryptoKeyPair;
    const pss = await x509.X509CertificateGenerator.createSelfSigned({
      name: "CN=pss",
      keys,
      signingAlgorithm: { name: "RSA-PSS", saltLength: 32 } as Algorithm,
    });
    const now = Date.now();
    const root = await createRootCa({
      commonName: "r",
      notBefore: new Date(now),
      notAfter: new Date(now + 1e6),
    });
    const answer = kernelCsrAnswer(new Uint8Array(pss.rawData), [], [
      kernelTrustAnchor(new Uint8Array(root.certificate.rawData)),
    ]);
    const r = await checkKernelAnswer(answer);
    assert.deepEqual(r.problems, [
      "certificate: signed with RSA-PSS, which the kernel's BearSSL cannot verify",
    ]);
  });

  await t.step("a leaf from another root is untrusted", async () => {
    const [rsa] = parsePem(await pki("root-ca-rsa.pem"));
    const now = Date.now();
    const other = await createRootCa({
      commonName: "other",
      notBefore: new Date(now),
      notAfter: new Date(now + 1e6),
    });
    const leaf = JSON.parse(captured).certificate.raw;
    const answer = JSON.stringify({
      certificate: { raw: leaf },
      chain: [],
      trust_anchors: [
        kernelTrustAnchor(new Uint8Array(other.certificate.rawData)),
        kernelTrustAnchor(rsa!.der),
      ].slice(0, 1),
    });
    const r = await checkKernelAnswer(answer);
    assert.deepEqual(r.problems, []);
    assert.equal(r.trusted, false);
    assert.match(r.untrustedReason!, /no trust anchor signed "CN=camblet-protected-workload"/);
  });
});
