import assert from "node:assert/strict";
import { runCli } from "../cli/_run.ts";

Deno.test("--driver kernel without the module: run exits 1 and says how to install it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await runCli([
      "run",
      "--driver",
      "kernel",
      "--kernel-module-device",
      "/dev/camblet-missing",
      "--ca-pem-path",
      `${dir}/ca.pem`,
      "--policies-path",
      dir,
      "--services-path",
      dir,
      "--control-socket",
      `${dir}/agent.sock`,
    ], { cwd: dir });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /Cannot open "\/dev\/camblet-missing": the device does not exist/);
    assert.match(r.stderr, /apt install dkms linux-headers-\$\(uname -r\)/);
    assert.match(r.stderr, /modprobe camblet/);
    assert.equal(
      await Deno.stat(`${dir}/ca.pem`).then(() => true, () => false),
      false,
      "failed before starting plugins",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
