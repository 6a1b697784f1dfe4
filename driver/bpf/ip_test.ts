import assert from "node:assert/strict";
import { ipBytes, ipText, normalizeIp } from "./ip.ts";

Deno.test("ipBytes: IPv4 becomes v4-mapped, IPv6 expands", () => {
  assert.deepEqual([...ipBytes("10.199.0.1")], [
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    255,
    255,
    10,
    199,
    0,
    1,
  ]);
  assert.deepEqual([...ipBytes("::ffff:10.199.0.1")], [...ipBytes("10.199.0.1")]);
  assert.deepEqual([...ipBytes("[fd99::1]")], [0xfd, 0x99, ...Array(13).fill(0), 1]);
  assert.deepEqual([...ipBytes("fe80::1%eth0")], [0xfe, 0x80, ...Array(13).fill(0), 1]);
  assert.deepEqual([...ipBytes("::1")], [...Array(15).fill(0), 1]);
  assert.throws(() => ipBytes("10.0.0"), /Cannot use "10.0.0" as an IP address/);
  assert.throws(() => ipBytes("example.com"), TypeError);
});

Deno.test("ipText: dotted for v4-mapped, RFC 5952 compression for IPv6", () => {
  for (
    const [input, want] of [
      ["10.0.0.1", "10.0.0.1"],
      ["::1", "::1"],
      ["::", "::"],
      ["fd99:0:0:0:0:0:0:1", "fd99::1"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
      ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ]
  ) assert.equal(ipText(ipBytes(input!)), want, input);
});

Deno.test("normalizeIp: one text per address", () => {
  assert.equal(normalizeIp("::FFFF:127.0.0.1"), "127.0.0.1");
  assert.equal(normalizeIp("FD99:0::1"), "fd99::1");
  assert.equal(normalizeIp("10.0.0.1"), "10.0.0.1");
});
