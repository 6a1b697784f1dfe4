import assert from "node:assert/strict";
import { kernelCsrAnswer, kernelTrustAnchor, TrustAnchorCache } from "./kernel_answer.ts";
import { CapabilityError } from "./errors.ts";
import { fromBase64 } from "./base64.ts";
import { parsePem } from "../tests/fakes/test_pki.ts";
import { captureAnswer, captureCsrSign, pki } from "../tests/fakes/identity_capture.ts";

Deno.test("kernel answer", async (t) => {
  await t.step(
    "reproduces the captured answer byte for byte from its certificate and root",
    async () => {
      const request = await captureCsrSign("python3");
      const captured = await captureAnswer(request.id);
      const leaf = fromBase64(JSON.parse(captured).certificate.raw);
      const [root] = parsePem(await pki("root-ca-rsa.pem"));
      assert.equal(kernelCsrAnswer(leaf, [], [kernelTrustAnchor(root!.der)]), captured);
    },
  );

  await t.step("an ECDSA root is a CapabilityError naming it", async () => {
    const [ec] = parsePem(await pki("root-ca-ecdsa.pem"));
    assert.throws(() => kernelTrustAnchor(ec!.der), (e: Error) => {
      assert.ok(e instanceof CapabilityError);
      assert.match(
        e.message,
        /^Cannot use trust anchor "O=acme\.test, CN=acme\.test ECDSA test root CA" with camblet-driver: its key is not RSA/,
      );
      return true;
    });
  });

  await t.step("the cache returns the same conversion", async () => {
    const [root] = parsePem(await pki("root-ca-rsa.pem"));
    const cache = new TrustAnchorCache();
    assert.equal(cache.get(root!.der), cache.get(root!.der));
    assert.equal(cache.get(root!.der).publicKey.RSA_E, "AQAB");
  });
});
