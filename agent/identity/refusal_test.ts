import assert from "node:assert/strict";
import { REFUSAL_CACHE_KEYS, RefusalIssuer } from "./refusal.ts";
import { parseCsr } from "../../plugins/sdk/csr.ts";
import { x509 } from "../../plugins/sdk/x509.ts";
import { pki } from "../../tests/fakes/identity_capture.ts";

Deno.test("RefusalIssuer", async () => {
  const now = Date.UTC(2026, 10, 22, 5);
  const issuer = await RefusalIssuer.create({ clock: { now: () => now }, validityMs: 30_000 });
  const csr = parseCsr(await pki("csr-web.pem"));
  const der = await issuer.issue(csr.publicKey);
  const cert = new x509.X509Certificate(der.slice().buffer as ArrayBuffer);
  assert.deepEqual(new Uint8Array(cert.publicKey.rawData), new Uint8Array(csr.publicKey.rawData));
  assert.equal(cert.notAfter.getTime(), now + 30_000);
  assert.equal(cert.subject, "O=camblet refusal, CN=camblet-refused");
  assert.equal(cert.getExtension(x509.SubjectAlternativeNameExtension), null, "no identity in it");
  assert.ok(await issuer.issued(der));
  const placeholder = new x509.X509Certificate(
    issuer.placeholderAnchor.slice().buffer as ArrayBuffer,
  );
  assert.equal(await cert.verify({ publicKey: placeholder.publicKey, signatureOnly: true }), false);
  const spare = await issuer.issue(undefined);
  assert.ok(await issuer.issued(spare));
});

Deno.test("RefusalIssuer: prepared per key, built synchronously when needed, bounded", async () => {
  let now = Date.UTC(2026, 10, 22, 5);
  const issuer = await RefusalIssuer.create({
    clock: { now: () => now },
    validityMs: 60_000,
    synchronous: true,
  });
  assert.ok(await issuer.syncReady());
  const spki = new Uint8Array(parseCsr(await pki("csr-web.pem")).publicKey.rawData);
  const sync = issuer.refusalSync(spki);
  assert.ok(await issuer.issued(sync.der));
  const cert = new x509.X509Certificate(sync.der.slice().buffer as ArrayBuffer);
  assert.deepEqual(new Uint8Array(cert.publicKey.rawData), spki);
  assert.equal(cert.serialNumber, sync.serial);
  assert.equal(await issuer.refusal(spki), sync, "reused while fresh");
  now += 31_000;
  assert.notEqual(await issuer.refusal(spki), sync, "renewed past half its validity");
  // One prepared refusal per distinct key, bounded: a key costs memory only while it is recent.
  for (let i = 0; i < 40; i++) {
    const { publicKey } = await crypto.subtle.generateKey(
      {
        name: "RSASSA-PKCS1-v1_5",
        hash: "SHA-256",
        modulusLength: 1024,
        publicExponent: new Uint8Array([1, 0, 1]),
      },
      true,
      ["sign", "verify"],
    ) as CryptoKeyPair;
    issuer.refusalSync(new Uint8Array(await crypto.subtle.exportKey("spki", publicKey)));
  }
  assert.equal(issuer.cachedKeys, REFUSAL_CACHE_KEYS);
});

Deno.test("RefusalIssuer: another isolate's copy from exportMaterial signs as the same issuer", async () => {
  const clock = { now: () => Date.now() };
  const issuer = await RefusalIssuer.create({ clock });
  const copy = await RefusalIssuer.fromMaterial(await issuer.exportMaterial(), { clock });
  const spki = new Uint8Array(parseCsr(await pki("csr-web.pem")).publicKey.rawData);
  assert.ok(await issuer.issued(await copy.issue(spki)));
  assert.deepEqual(copy.placeholderAnchor, issuer.placeholderAnchor);
  assert.equal(await RefusalIssuer.shared(), await RefusalIssuer.shared());
});

Deno.test("RefusalIssuer: ECDSA-signed leaves for RSA keys that openssl reads; the spare key is RSA-2048", async () => {
  const issuer = await RefusalIssuer.create({ clock: { now: () => Date.now() } });
  const dir = await Deno.makeTempDir();
  try {
    const text = async (der: Uint8Array) => {
      await Deno.writeFile(`${dir}/c.der`, der);
      const out = await new Deno.Command("openssl", {
        args: ["x509", "-inform", "DER", "-in", `${dir}/c.der`, "-noout", "-text"],
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      return new TextDecoder().decode(out.stdout);
    };
    const spki = new Uint8Array(parseCsr(await pki("csr-web.pem")).publicKey.rawData);
    const leaf = await text(await issuer.issue(spki));
    assert.match(leaf, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(
      leaf,
      /Issuer: O *= *camblet refusal, CN *= *camblet refusal issuer \(untrusted\)/,
    );
    assert.match(leaf, /rsaEncryption/, "the leaf keeps the CSR's RSA key");
    const spare = await text(await issuer.issue(undefined));
    assert.match(spare, /Public-Key: \(2048 bit\)/);
    const placeholder = await text(issuer.placeholderAnchor);
    assert.match(placeholder, /Subject: O *= *camblet refusal, CN *= *camblet refusal placeholder/);
    assert.match(
      placeholder,
      /Public-Key: \(2048 bit\)/,
      "trust anchors must be RSA (protocol doc)",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
