import assert from "node:assert/strict";
import {
  ADDR_PORT_SIZE,
  addrPort,
  CONFIG_SIZE,
  configBytes,
  ORIG_DST_SIZE,
  readAddrPort,
  readOrigDst,
} from "./steer_layout.ts";
import { STEER_OBJECT_BASE64 } from "./steer_object.ts";
import { Buffer } from "node:buffer";

Deno.test("addrPort round-trips and rejects bad ports", () => {
  const k = addrPort("10.199.0.1", 8000);
  assert.equal(k.length, ADDR_PORT_SIZE);
  assert.deepEqual(readAddrPort(k), { ip: "10.199.0.1", port: 8000 });
  assert.deepEqual(readAddrPort(addrPort("fd99::1", 0)), { ip: "fd99::1", port: 0 });
  assert.throws(() => addrPort("::1", 70000), /Cannot use port 70000/);
});

Deno.test("readOrigDst decodes struct orig_dst", () => {
  const b = new Uint8Array(ORIG_DST_SIZE);
  b.set(addrPort("10.0.0.5", 443));
  const dv = new DataView(b.buffer);
  dv.setUint32(20, 4242, true);
  dv.setUint32(24, 1000, true);
  dv.setUint32(28, 100, true);
  dv.setBigUint64(40, 77n, true);
  assert.deepEqual(readOrigDst(b), {
    ip: "10.0.0.5",
    port: 443,
    pid: 4242,
    uid: 1000,
    gid: 100,
    cookie: 77n,
  });
});

Deno.test("configBytes lays out struct config", () => {
  const b = configBytes({
    netnsCookie: 4106n,
    agentTgid: 99,
    failClosed: true,
    proxyIp4: "127.0.0.1",
    proxyIp6: "::1",
    proxyPort: 15001,
  });
  assert.equal(b.length, CONFIG_SIZE);
  const dv = new DataView(b.buffer);
  assert.equal(dv.getBigUint64(0, true), 4106n);
  assert.equal(dv.getUint32(8, true), 99);
  assert.equal(dv.getUint32(12, true), 1);
  assert.deepEqual([...b.subarray(16, 20)], [127, 0, 0, 1]);
  assert.deepEqual([...b.subarray(20, 36)], [...Array(15).fill(0), 1]);
  assert.equal(dv.getUint32(36, true), 15001);
  assert.throws(
    () =>
      configBytes({
        netnsCookie: 1n,
        agentTgid: 1,
        failClosed: false,
        proxyIp4: "::1",
        proxyPort: 1,
      }),
    /IPv4 listener/,
  );
});

Deno.test("struct sizes match the BTF of the embedded object", async (t) => {
  const ok = await new Deno.Command("sh", { args: ["-c", "command -v bpftool"], stdout: "null" })
    .output()
    .then((o) => o.success, () => false);
  if (!ok) {
    console.warn("SKIP struct sizes vs BTF: bpftool is not installed (Debian package bpftool)");
    return;
  }
  const file = await Deno.makeTempFile({ suffix: ".o" });
  try {
    await Deno.writeFile(file, Buffer.from(STEER_OBJECT_BASE64, "base64"));
    const out = await new Deno.Command("bpftool", {
      args: ["btf", "dump", "file", file],
      stdout: "piped",
    }).output();
    const btf = new TextDecoder().decode(out.stdout);
    for (
      const [name, size] of [["addr_port", ADDR_PORT_SIZE], ["orig_dst", ORIG_DST_SIZE], [
        "config",
        CONFIG_SIZE,
      ]] as const
    ) {
      await t.step(name, () => assert.match(btf, new RegExp(`STRUCT '${name}' size=${size} `)));
    }
  } finally {
    await Deno.remove(file);
  }
});
