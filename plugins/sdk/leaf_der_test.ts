import assert from "node:assert/strict";
import { csrNames, parseCsr } from "./csr.ts";
import { readCertificateFacts, readCsrDer, verifyCsrDer } from "./leaf_der.ts";
import { signLeafDer } from "./leaf_signer.ts";
import { createRootCa, x509 } from "./x509.ts";

const pem = await Deno.readTextFile("tests/testdata/camblet-driver/pki/csr-web.pem");
const der = new Uint8Array(parseCsr(pem).rawData);

Deno.test("leaf_der", async (t) => {
  await t.step("reads a kernel CSR as @peculiar/x509 does, and verifies it natively", async () => {
    const full = parseCsr(der);
    const fast = readCsrDer(der);
    assert.deepEqual(fast.spki, new Uint8Array(full.publicKey.rawData));
    assert.deepEqual({ uris: fast.uris, dnsNames: fast.dnsNames, others: fast.others }, {
      ...csrNames(full),
    });
    assert.equal(await verifyCsrDer(fast), true);
    const tampered = der.slice();
    tampered[tampered.length - 1]! ^= 1;
    assert.equal(await verifyCsrDer(readCsrDer(tampered)), false);
    assert.throws(() => readCsrDer(der.subarray(0, 40)), /Cannot parse CSR/);
  });

  await t.step("signs a leaf with the contents issueLeaf gives it", async () => {
    const now = Date.now();
    const root = await createRootCa({
      commonName: "fast path root",
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 86_400_000),
    });
    const { der: leafDer, notAfter } = await signLeafDer(root, {
      csr: der,
      spiffeId: "spiffe://acme.test/web",
      dnsNames: ["web.local"],
      ttlMs: 3_600_000,
    }, { now, maxTtlMs: 86_400_000, backdateMs: 60_000 });
    const leaf = new x509.X509Certificate(leafDer.slice().buffer as ArrayBuffer);
    assert.equal(leaf.issuer, root.certificate.subject);
    assert.equal(leaf.subject, "CN=camblet-protected-workload");
    assert.equal(await leaf.verify({ publicKey: root.keys.publicKey, signatureOnly: true }), true);
    assert.equal(leaf.notAfter.getTime(), notAfter.getTime());
    assert.ok(Math.abs(notAfter.getTime() - (now + 3_600_000)) < 1000);
    assert.equal(leaf.getExtension(x509.BasicConstraintsExtension)?.ca, false);
    assert.equal(
      leaf.getExtension(x509.KeyUsagesExtension)?.usages,
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    );
    assert.deepEqual([...leaf.getExtension(x509.ExtendedKeyUsageExtension)!.usages], [
      x509.ExtendedKeyUsage.serverAuth,
      x509.ExtendedKeyUsage.clientAuth,
    ]);
    assert.ok(leaf.getExtension(x509.AuthorityKeyIdentifierExtension));
    const sans = leaf.getExtension(x509.SubjectAlternativeNameExtension)!.names.items;
    assert.deepEqual(sans.map((n) => `${n.type}:${n.value}`), [
      "url:spiffe://acme.test/web",
      "dns:web.local",
    ]);
    const facts = readCertificateFacts(leafDer);
    assert.equal(facts.serialHex, leaf.serialNumber);
    assert.deepEqual(facts.uris, ["spiffe://acme.test/web"]);
    assert.deepEqual(facts.spki, readCsrDer(der).spki);
    assert.equal(facts.notAfter.getTime(), leaf.notAfter.getTime());
    assert.equal(facts.signatureAlgorithm, "1.2.840.113549.1.1.11");
  });
});
