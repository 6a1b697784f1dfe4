import assert from "node:assert/strict";
import { encodeCaFile, encodeRetired, parseCaFile, parseRetired } from "./ca_file.ts";
import { writeGoCaPem } from "../../../tests/fakes/ca_go_fixture.ts";
import { createRootCa, x509 } from "../../sdk/x509.ts";
import { parsePem } from "../../sdk/pem.ts";

async function openssl(args: string[], stdin?: string) {
  const child = new Deno.Command("openssl", {
    args,
    stdin: stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const r = await child.output();
  return {
    code: r.code,
    out: new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr),
  };
}

Deno.test("CA file", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "ca-file-" });
  try {
    await t.step(
      "reads the Go agent's ca.pem (PKCS#1 under PRIVATE KEY, PEM headers)",
      async () => {
        const { path } = await writeGoCaPem(await Deno.makeTempDir({ dir }));
        const text = await Deno.readTextFile(path);
        assert.match(text, /Type: ROOT CA/);
        const key = parsePem(text).find((b) => b.label === "PRIVATE KEY")!;
        // PKCS#1: SEQUENCE { INTEGER 0, INTEGER n, … }, where PKCS#8 has an AlgorithmIdentifier.
        assert.deepEqual([key.der[4], key.der[5], key.der[6], key.der[7]], [
          0x02,
          0x01,
          0x00,
          0x02,
        ]);
        const { material, format } = await parseCaFile(text, path);
        assert.equal(format, "camblet-go");
        assert.equal(material.root.subject, "CN=Camblet root CA");
        assert.ok(material.signer.certificate.equal(material.root));
        assert.ok(material.rootKeys);
      },
    );

    await t.step(
      "reads a Go create-intermediate bundle: the intermediate signs, no root key",
      async () => {
        const { path } = await writeGoCaPem(await Deno.makeTempDir({ dir }), {
          intermediate: true,
        });
        const { material } = await parseCaFile(await Deno.readTextFile(path), path);
        assert.equal(material.signer.certificate.subject, "CN=node-1 CA");
        assert.equal(material.root.subject, "CN=Camblet root CA");
        assert.equal(material.rootKeys, undefined);
        assert.deepEqual(material.intermediates, []);
      },
    );

    await t.step("writes standard PEM: PKCS#8 that OpenSSL reads, no headers", async () => {
      const { path } = await writeGoCaPem(await Deno.makeTempDir({ dir }), { intermediate: true });
      const { material } = await parseCaFile(await Deno.readTextFile(path), path);
      const out = await encodeCaFile(material);
      assert.doesNotMatch(out, /: /, "no PEM headers");
      assert.deepEqual(out.match(/-----BEGIN [A-Z ]+-----/g), [
        "-----BEGIN CERTIFICATE-----",
        "-----BEGIN CERTIFICATE-----",
        "-----BEGIN PRIVATE KEY-----",
      ]);
      assert.equal(
        (await openssl(["pkey", "-noout"], out.slice(out.indexOf("-----BEGIN PRIVATE KEY")))).code,
        0,
      );
      const again = await parseCaFile(out, "again");
      assert.equal(again.format, "standard");
      assert.ok(again.material.signer.certificate.equal(material.signer.certificate));
    });

    await t.step("refuses files it cannot use, naming the file and the reason", async () => {
      const d = await Deno.makeTempDir({ dir });
      const { path } = await writeGoCaPem(d, { wrongKey: true });
      await assert.rejects(parseCaFile(await Deno.readTextFile(path), path), {
        message:
          `Cannot load CA file "${path}": no CA certificate in it matches a private key in it`,
      });
      const rootPem = await Deno.readTextFile(`${d}/root.crt`);
      await assert.rejects(parseCaFile(rootPem, "x.pem"), {
        message: 'Cannot load CA file "x.pem": it holds no PRIVATE KEY block',
      });
      await assert.rejects(parseCaFile("nothing here", "x.pem"), {
        message: 'Cannot load CA file "x.pem": it holds no CERTIFICATE block',
      });
      await assert.rejects(
        parseCaFile("-----BEGIN CERTIFICATE-----\nAAA\n", "x.pem"),
        /no END line/,
      );
      // An intermediate without its root in the file.
      const { path: p2 } = await writeGoCaPem(await Deno.makeTempDir({ dir }), {
        intermediate: true,
      });
      const text = await Deno.readTextFile(p2);
      const noRoot = text.slice(0, text.lastIndexOf("-----BEGIN CERTIFICATE-----"));
      await assert.rejects(
        parseCaFile(noRoot, "int.pem"),
        /does not chain to a self-signed root in the file/,
      );
    });

    await t.step("retired anchors round-trip with their keep-until times", async () => {
      const now = Date.now();
      const root = await createRootCa({
        commonName: "old",
        notBefore: new Date(now),
        notAfter: new Date(now + 1e9),
      });
      const text = encodeRetired([{ certificate: root.certificate, keepUntil: now + 5000 }]);
      assert.match(text, /^Keep-Until: \d{4}-/);
      const back = parseRetired(text, "r");
      assert.equal(back.length, 1);
      assert.equal(back[0]!.keepUntil, now + 5000);
      assert.ok(back[0]!.certificate.equal(root.certificate));
      // OpenSSL ignores the text lines: the file is a valid bundle.
      assert.equal((await openssl(["x509", "-noout", "-subject"], text)).code, 0);
      assert.ok(new x509.X509Certificate(root.certificate.rawData));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
