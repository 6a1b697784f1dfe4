import assert from "node:assert/strict";
import { configSchema } from "../config/schema.ts";
import { chooseDataPlane } from "./data_plane.ts";

const agent = (o: Record<string, unknown>) => configSchema.parse({ agent: o }).agent;

Deno.test("chooseDataPlane: auto follows the device; explicit choices win", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const dev = `${dir}/camblet`;
    assert.deepEqual(await chooseDataPlane(agent({ kernelModuleDevice: dev })), {
      kind: "proxy",
      reason: `auto: ${dev} does not exist (camblet-driver not loaded)`,
    });
    await Deno.writeTextFile(dev, "");
    assert.equal((await chooseDataPlane(agent({ kernelModuleDevice: dev }))).kind, "kernel");
    assert.equal(
      (await chooseDataPlane(agent({ kernelModuleDevice: dev, driver: "proxy" }))).kind,
      "proxy",
    );
    await Deno.remove(dev);
    assert.equal(
      (await chooseDataPlane(agent({ kernelModuleDevice: dev, driver: "kernel" }))).kind,
      "kernel",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("agent.driver and agent.proxy: defaults and bad values", () => {
  const a = agent({});
  assert.equal(a.driver, "auto");
  assert.deepEqual(a.proxy, {
    outboundPort: 15001,
    inboundPort: 15006,
    failClosed: false,
    pinDir: "/sys/fs/bpf/camblet",
    keyType: "rsa",
    listenerScanInterval: "2s",
  });
  assert.throws(() => agent({ driver: "ebpf" }));
  assert.throws(() => agent({ proxy: { outboundPort: 0 } }));
  assert.throws(() => agent({ proxy: { keyType: "dsa" } }));
});
