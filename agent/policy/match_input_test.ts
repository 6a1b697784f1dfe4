import assert from "node:assert/strict";
import {
  buildKernelInput,
  byteSwap16,
  crc32cRaw,
  kernelIp,
  lookupService,
  serviceBucket,
} from "./match_input.ts";
import type { KernelPayloads } from "../../driver/payloads.ts";

const enc = new TextEncoder();

Deno.test("kernelIp prints like %pI4 / %pI6", () => {
  assert.equal(kernelIp("127.0.0.1"), "127.0.0.1");
  assert.equal(kernelIp("::1"), "0000:0000:0000:0000:0000:0000:0000:0001");
  assert.equal(kernelIp("[FE80::A:b]"), "fe80:0000:0000:0000:0000:0000:000a:000b");
  assert.equal(kernelIp("fe80::1%eth0"), "fe80:0000:0000:0000:0000:0000:0000:0001");
  assert.equal(kernelIp("2001:db8::"), "2001:0db8:0000:0000:0000:0000:0000:0000");
  assert.equal(kernelIp("::ffff:10.1.2.3"), "0000:0000:0000:0000:0000:ffff:0a01:0203");
  assert.equal(kernelIp("1:2:3:4:5:6:7:8"), "0001:0002:0003:0004:0005:0006:0007:0008");
  for (const bad of ["", "10.0.0", "1::2::3", "web.local", "10.0.0.256"]) {
    assert.throws(() => kernelIp(bad), TypeError, bad);
  }
});

Deno.test("byteSwap16 swaps the two bytes of a port", () => {
  assert.equal(byteSwap16(37118), 65168); // seen in the baseline capture
  assert.equal(byteSwap16(50888), 51398);
  assert.equal(byteSwap16(byteSwap16(443)), 443);
});

Deno.test("the kernel's service hash", async (t) => {
  await t.step("crc32c is CRC-32C (standard check value with the usual pre/post inversion)", () => {
    const crc = (crc32cRaw(0xffffffff, enc.encode("123456789")) ^ 0xffffffff) >>> 0;
    assert.equal(crc, 0xe3069283);
  });
  await t.step("buckets are 0..255", () => {
    for (const a of ["127.0.0.1", "127.0.0.1:8000", "::1"]) {
      const b = serviceBucket(a);
      assert.ok(Number.isInteger(b) && b >= 0 && b < 256, `${a}: ${b}`);
    }
  });
});

Deno.test("lookupService", async (t) => {
  await t.step("bare IP first, then ip:port", () => {
    const sd = { "10.0.0.2:8000": { labels: ["a=port"] }, "10.0.0.2": { labels: ["a=ip"] } };
    assert.deepEqual(lookupService(sd, "10.0.0.2", 8000), {
      tried: ["10.0.0.2"],
      key: "10.0.0.2",
      labels: ["a=ip"],
    });
    assert.deepEqual(lookupService({ "10.0.0.2:8000": sd["10.0.0.2:8000"] }, "10.0.0.2", 8000), {
      tried: ["10.0.0.2", "10.0.0.2:8000"],
      key: "10.0.0.2:8000",
      labels: ["a=port"],
    });
    assert.deepEqual(lookupService(sd, "10.0.0.3", 8000), {
      tried: ["10.0.0.3", "10.0.0.3:8000"],
    });
  });

  await t.step("an entry in the same bucket that starts with the looked-up text is found", () => {
    // "10.0.0.115" and "10.0.0.115:8000" share a bucket, as do "10.0.0.2:20" and "10.0.0.2:200".
    assert.equal(serviceBucket("10.0.0.115"), serviceBucket("10.0.0.115:8000"));
    const any = lookupService({ "10.0.0.115:8000": { labels: ["x=1"] } }, "10.0.0.115", 22);
    assert.equal(any.key, "10.0.0.115:8000");
    assert.equal(any.prefixMatch, true);
    assert.equal(serviceBucket("10.0.0.2:20"), serviceBucket("10.0.0.2:200"));
    const port = lookupService({ "10.0.0.2:200": { labels: [] } }, "10.0.0.2", 20);
    assert.equal(port.key, "10.0.0.2:200");
    // Not in the same bucket: not found.
    assert.notEqual(serviceBucket("10.0.0.2"), serviceBucket("10.0.0.2:8000"));
    assert.equal(lookupService({ "10.0.0.2:8000": { labels: [] } }, "10.0.0.2", 22).key, undefined);
  });
});

Deno.test("buildKernelInput notes what the kernel would add but we were not told", () => {
  const p: KernelPayloads = {
    load_config: { trust_domain: "t" },
    load_sd_info: {},
    load_policies: { policies: [] },
  };
  const r = buildKernelInput(p, { labels: ["a=1"], direction: "output" });
  assert.equal(r.evaluated, true);
  assert.deepEqual(r.input, { labels: ["a=1", "direction=output"] });
  assert.match(r.notes.join("\n"), /destination IP not given/);
  assert.match(r.notes.join("\n"), /destination:port not given/);
  assert.throws(
    () => buildKernelInput(p, { labels: [], direction: "input", sourcePort: 70000 }),
    /Cannot use source port 70000/,
  );
});
