/**
 * A self-signed CA file the agent then refuses (an ECDSA root, which camblet-driver cannot
 * verify) must not replace the trust bundle peers read: public_ca.crt stays as it was.
 */
import assert from "node:assert/strict";
import { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";
import { runCli } from "../cli/_run.ts";

async function ecdsaCaPem(dir: string): Promise<string> {
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      `${dir}/k.pem`,
      "-out",
      `${dir}/c.pem`,
      "-subj",
      "/CN=ec-root",
      "-days",
      "3650",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return (await Deno.readTextFile(`${dir}/c.pem`)) + (await Deno.readTextFile(`${dir}/k.pem`));
}

Deno.test("an ECDSA root refused with the kernel driver leaves public_ca.crt alone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camblet-refused-ca-" });
  const emu = await KernelEmulator.open();
  try {
    await Deno.writeTextFile(`${dir}/ca.pem`, await ecdsaCaPem(dir), { mode: 0o600 });
    const before = "-----BEGIN CERTIFICATE-----\nthe bundle peers trust today\n";
    await Deno.writeTextFile(`${dir}/public_ca.crt`, before);
    await Deno.mkdir(`${dir}/policies`);
    await Deno.mkdir(`${dir}/services`);
    const r = await runCli([
      "run",
      "--driver",
      "kernel",
      "--kernel-module-device",
      emu.path,
      "--control-socket",
      `${dir}/run/agent.sock`,
      "--policies-path",
      `${dir}/policies`,
      "--services-path",
      `${dir}/services`,
      "--ca-pem-path",
      `${dir}/ca.pem`,
      "--trust-domain",
      "acme.test",
    ], { cwd: dir });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /RSA|ECDSA|EC/);
    assert.equal(await Deno.readTextFile(`${dir}/public_ca.crt`), before);
  } finally {
    await emu.close();
    await Deno.remove(dir, { recursive: true });
  }
});
