import assert from "node:assert/strict";
import { addressProblem, ipKey, ipv4Key, ipv6Key, isHostname, serviceKey } from "./address.ts";

Deno.test("ipv4Key", async (t) => {
  await t.step("accepts dotted quads as the kernel prints them", () => {
    assert.equal(ipv4Key("127.0.0.1"), "127.0.0.1");
    assert.equal(ipv4Key("255.255.255.255"), "255.255.255.255");
    assert.equal(ipv4Key("0.0.0.0"), "0.0.0.0");
  });
  await t.step("refuses out-of-range octets, leading zeros and short forms", () => {
    for (const bad of ["256.0.0.1", "010.0.0.1", "1.2.3", "1.2.3.4.5", "a.b.c.d", " 1.2.3.4", ""]) {
      assert.equal(ipv4Key(bad), undefined, bad);
    }
  });
});

Deno.test("ipv6Key", async (t) => {
  await t.step("expands to 8 lower-case groups of 4 hex digits (%pI6)", () => {
    assert.equal(ipv6Key("::1"), "0000:0000:0000:0000:0000:0000:0000:0001");
    assert.equal(ipv6Key("::"), "0000:0000:0000:0000:0000:0000:0000:0000");
    assert.equal(ipv6Key("FD00::5"), "fd00:0000:0000:0000:0000:0000:0000:0005");
    assert.equal(ipv6Key("2001:db8::8a2e:370:7334"), "2001:0db8:0000:0000:0000:8a2e:0370:7334");
    assert.equal(ipv6Key("1:2:3:4:5:6:7:8"), "0001:0002:0003:0004:0005:0006:0007:0008");
    assert.equal(ipv6Key("1::"), "0001:0000:0000:0000:0000:0000:0000:0000");
    assert.equal(ipv6Key("1:2:3:4:5:6:7::"), "0001:0002:0003:0004:0005:0006:0007:0000");
  });
  await t.step("handles IPv4 tails and brackets", () => {
    assert.equal(ipv6Key("::ffff:10.0.0.1"), "0000:0000:0000:0000:0000:ffff:0a00:0001");
    assert.equal(ipv6Key("[::1]"), "0000:0000:0000:0000:0000:0000:0000:0001");
  });
  await t.step("refuses malformed addresses and zone ids", () => {
    for (
      const bad of [
        "1::2::3",
        ":1",
        "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7",
        "1::2:3:4:5:6:7:8",
        "12345::",
        "fe80::1%eth0",
        "::ffff:300.0.0.1",
        "::1.2.3.4:5",
        "g::1",
        "127.0.0.1",
      ]
    ) assert.equal(ipv6Key(bad), undefined, bad);
  });
});

Deno.test("isHostname and addressProblem", async (t) => {
  await t.step("hostnames follow RFC 1123", () => {
    for (const ok of ["localhost", "web.acme.corp", "a-b.c", "db.", "x1"]) {
      assert.ok(isHostname(ok), ok);
    }
    for (const bad of ["-a.b", "a_b.c", "a..b", "", "300.1.1.1", "a".repeat(64), "x y"]) {
      assert.ok(!isHostname(bad), bad);
    }
  });
  await t.step("explains why an address is unusable", () => {
    assert.equal(addressProblem("10.0.0.1"), undefined);
    assert.equal(addressProblem("::1"), undefined);
    assert.equal(addressProblem("db.local"), undefined);
    assert.match(addressProblem("fe80::1%eth0")!, /zone id/);
    assert.match(addressProblem("127.0.0.1:8000")!, /includes a port/);
    assert.match(addressProblem("300.1.1.1")!, /"300.1.1.1" is neither/);
  });
  await t.step("serviceKey joins the kernel form and the port", () => {
    assert.equal(serviceKey("::1", 8000), "0000:0000:0000:0000:0000:0000:0000:0001:8000");
    assert.equal(serviceKey("127.0.0.1", 80), "127.0.0.1:80");
    assert.equal(serviceKey("db", 80), undefined);
    assert.equal(ipKey("db"), undefined);
  });
});
