import assert from "node:assert/strict";
import { decodeEvent, fnv1a64, MAX_PATH, pathKey, SIZES } from "./guard_layout.ts";

Deno.test("fnv1a64 matches the published FNV-1a 64 vectors", () => {
  const enc = new TextEncoder();
  assert.equal(fnv1a64(enc.encode("")), 0xcbf29ce484222325n);
  assert.equal(fnv1a64(enc.encode("a")), 0xaf63dc4c8601ec8cn);
  assert.equal(fnv1a64(enc.encode("foobar")), 0x85944171f73967e8n);
});

Deno.test("pathKey: a trailing / is a prefix, anything else exact; bad lengths are refused", () => {
  const v = (k: Uint8Array) => new DataView(k.buffer);
  const prefix = pathKey(7, "/etc/");
  assert.equal(v(prefix).getUint32(0, true), 7);
  assert.equal(v(prefix).getUint32(4, true), 5);
  const exact = pathKey(7, "/etc/shadow");
  assert.equal(v(exact).getUint32(4, true), (11 | 0x80000000) >>> 0);
  assert.equal(
    v(exact).getBigUint64(8, true),
    fnv1a64(new TextEncoder().encode("/etc/shadow")),
  );
  assert.throws(() => pathKey(1, ""), /1\.\.255 bytes/);
  assert.throws(() => pathKey(1, "/" + "a".repeat(MAX_PATH)), /Cannot key path/);
});

Deno.test("decodeEvent reads struct event's fields at the C offsets", () => {
  const b = new Uint8Array(SIZES.event);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, 123n, true);
  v.setBigUint64(8, 4567n, true);
  v.setUint32(16, 10, true);
  v.setUint32(20, 11, true);
  v.setUint32(24, 1000, true);
  v.setUint32(28, 3, true);
  v.setUint32(32, 1, true);
  v.setUint32(36, 2, true);
  v.setUint32(40, 1, true);
  v.setInt32(44, -5, true);
  v.setUint32(48, 9, true);
  b.set(new TextEncoder().encode("bash\0"), 56);
  b.set(new TextEncoder().encode("/usr/bin/dash\0"), 72);
  assert.deepEqual(decodeEvent(b), {
    tsNs: 123n,
    cgroupId: 4567n,
    pid: 10,
    tid: 11,
    uid: 1000,
    ruleset: 3,
    hook: "exec",
    outcome: "audited",
    rule: 1,
    arg: -5,
    ppid: 9,
    comm: "bash",
    path: "/usr/bin/dash",
  });
  assert.throws(() => decodeEvent(b.subarray(0, 10)), /10 bytes/);
});
