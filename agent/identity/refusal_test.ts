import assert from "node:assert/strict";
import { RefusalIssuer } from "./refusal.ts";
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
