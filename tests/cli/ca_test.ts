import assert from "node:assert/strict";
import { runCli } from "./_run.ts";
import { writeGoCaPem } from "../fakes/ca_go_fixture.ts";
import { parseCaFile } from "../../plugins/ca/self_signed/ca_file.ts";
import { parsePem } from "../../plugins/sdk/pem.ts";

async function openssl(args: string[], stdin: string): Promise<{ code: number; out: string }> {
  const child = new Deno.Command("openssl", {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const r = await child.output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

Deno.test("camblet-agent ca", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "cli-ca-" });
  try {
    await t.step("help has a description and examples; aliases cr and cim", async () => {
      for (
        const args of [["ca", "--help"], ["ca", "cr", "--help"], ["ca", "cim", "--help"], [
          "ca",
          "rotate",
          "--help",
        ]]
      ) {
        const r = await runCli(args);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /Description:/);
        assert.match(r.stdout, /Examples:/);
      }
    });

    await t.step("create-root prints a root and its PKCS#8 key", async () => {
      const r = await runCli([
        "ca",
        "create-root",
        "Acme root CA",
        "--ttl",
        "48h",
        "--key-size",
        "3072",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(parsePem(r.stdout).map((b) => b.label), ["CERTIFICATE", "PRIVATE KEY"]);
      const x = await openssl(["x509", "-noout", "-subject", "-text"], r.stdout);
      assert.match(x.out, /subject=CN = Acme root CA/);
      assert.match(x.out, /Public-Key: \(3072 bit\)/);
      assert.match(x.out, /CA:TRUE/);
      assert.equal(
        (await openssl(
          ["pkey", "-noout"],
          r.stdout.slice(r.stdout.indexOf("-----BEGIN PRIVATE KEY")),
        )).code,
        0,
      );
      await Deno.writeTextFile(`${dir}/root.pem`, r.stdout);
    });

    await t.step("bad flags are usage errors (exit 2, with help)", async () => {
      const r = await runCli(["ca", "cr", "X", "--key-size", "1024"]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--key-size must be 2048, 3072 or 4096, got "1024"/);
      assert.match(r.stderr, /Usage:/);
      const missing = await runCli(["ca", "create-root"]);
      assert.equal(missing.code, 2);
    });

    await t.step(
      "create-intermediate signs with the CA file; the output is a usable ca.pem",
      async () => {
        const r = await runCli([
          "ca",
          "cim",
          "Node CA",
          "node-1",
          "--ca-pem-file",
          `${dir}/root.pem`,
          "--trust-domain",
          "acme.test",
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(parsePem(r.stdout).map((b) => b.label), [
          "CERTIFICATE",
          "PRIVATE KEY",
          "CERTIFICATE",
        ]);
        const { material } = await parseCaFile(r.stdout, "out");
        assert.equal(material.signer.certificate.subject, "CN=Node CA");
        assert.equal(material.rootKeys, undefined);
        const text = await openssl(["x509", "-noout", "-ext", "subjectAltName"], r.stdout);
        assert.match(text.out, /URI:spiffe:\/\/acme\.test\/node-1/);
        await Deno.writeTextFile(`${dir}/chain.pem`, r.stdout);
        const v = await openssl(["verify", "-CAfile", `${dir}/root.pem`], r.stdout);
        assert.equal(v.code, 0, v.out);
      },
    );

    await t.step("create-intermediate reads a Go agent ca.pem too", async () => {
      const { path } = await writeGoCaPem(await Deno.makeTempDir({ dir }));
      const r = await runCli(["ca", "cim", "Node CA", "node-2", "--ca-pem-file", path]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        (await openssl(["x509", "-noout", "-ext", "subjectAltName"], r.stdout)).out,
        /spiffe:\/\/camblet\/node-2/,
      );
    });

    await t.step("a missing CA file is exit 1 naming it", async () => {
      const r = await runCli(["ca", "cim", "N", "n", "--ca-pem-file", `${dir}/nope.pem`]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /nope\.pem/);
    });

    await t.step("rotate replaces the root and keeps the old one in public_ca.crt", async () => {
      const ca = `${dir}/rot/ca.pem`;
      await Deno.mkdir(`${dir}/rot`);
      const missing = await runCli(["ca", "rotate", "--ca-pem-path", ca]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /Cannot rotate: CA file ".*rot\/ca\.pem" does not exist/);
      await Deno.copyFile(`${dir}/root.pem`, ca);
      const r = await runCli(["ca", "rotate", "--ca-pem-path", ca]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^rotated the root in /);
      assert.match(r.stdout, /still trusted until .*: CN=Acme root CA/);
      assert.equal(parsePem(await Deno.readTextFile(`${dir}/rot/public_ca.crt`)).length, 2);
      assert.equal((await Deno.stat(ca)).mode! & 0o777, 0o600);
      const j = await runCli(["ca", "rotate", "--ca-pem-path", ca, "--intermediate", "-o", "json"]);
      assert.equal(j.code, 0, j.stderr);
      const out = JSON.parse(j.stdout);
      assert.equal(out.rotated, "intermediate");
      assert.equal(out.signer.subject, "CN=Camblet intermediate CA");
      assert.equal(out.retired.length, 1);
    });

    await t.step("rotate reports config problems with their path", async () => {
      await Deno.writeTextFile(
        `${dir}/config.yaml`,
        `plugins:\n  ca:\n    self-signed:\n      keySize: 1000\n`,
      );
      const r = await runCli([
        "--config",
        `${dir}/config.yaml`,
        "ca",
        "rotate",
        "--ca-pem-path",
        `${dir}/rot/ca.pem`,
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /plugins\.ca\.self-signed\.keySize: must be 2048, 3072 or 4096/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
