import assert from "node:assert/strict";
import {
  exportPkcs8,
  generateRsaKeyPair,
  importPrivateKey,
  samePublicKey,
  signingAlgorithm,
} from "./keys.ts";
import { parsePem } from "./pem.ts";

async function openssl(args: string[]): Promise<string> {
  const r = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" }).output();
  if (r.code !== 0) throw new Error(new TextDecoder().decode(r.stderr));
  return new TextDecoder().decode(r.stdout);
}

Deno.test("CA keys", async (t) => {
  await t.step(
    "imports PKCS#1 (as RSA PRIVATE KEY and mislabelled PRIVATE KEY) and PKCS#8",
    async () => {
      const pkcs1 = await openssl(["genrsa", "-traditional", "2048"]);
      const [block] = parsePem(pkcs1);
      assert.equal(block!.label, "RSA PRIVATE KEY");
      const a = await importPrivateKey(block!);
      const b = await importPrivateKey({ ...block!, label: "PRIVATE KEY" });
      assert.ok(await samePublicKey(a.publicKey, b.publicKey));
      const c = await importPrivateKey({
        label: "PRIVATE KEY",
        headers: {},
        der: await exportPkcs8(a.privateKey),
      });
      assert.ok(await samePublicKey(a.publicKey, c.publicKey));
      assert.deepEqual(signingAlgorithm(a.privateKey), {
        name: "RSASSA-PKCS1-v1_5",
        hash: "SHA-256",
      });
    },
  );

  await t.step("imports EC PKCS#8; names the SEC1 conversion", async () => {
    const ec = await openssl([
      "genpkey",
      "-algorithm",
      "EC",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
    ]);
    const k = await importPrivateKey(parsePem(ec)[0]!);
    assert.equal(signingAlgorithm(k.privateKey).name, "ECDSA");
    await assert.rejects(
      importPrivateKey({ label: "EC PRIVATE KEY", headers: {}, der: new Uint8Array() }),
      /openssl pkcs8 -topk8/,
    );
    await assert.rejects(
      importPrivateKey({ label: "ENCRYPTED PRIVATE KEY", headers: {}, der: new Uint8Array() }),
      /Cannot import private key from a "ENCRYPTED PRIVATE KEY"/,
    );
  });

  await t.step("generates only sizes the kernel can use", async () => {
    await assert.rejects(generateRsaKeyPair(1024), RangeError);
    const k = await generateRsaKeyPair(2048);
    assert.equal((k.publicKey.algorithm as RsaHashedKeyAlgorithm).modulusLength, 2048);
  });
});
