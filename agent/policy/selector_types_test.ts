import assert from "node:assert/strict";
import { checkSelectorValue } from "./selector_types.ts";

Deno.test("typed selector values: the values each label can take", () => {
  const ok = (name: string, v: string, want = v) =>
    assert.deepEqual(checkSelectorValue(name, v), { value: want }, `${name}=${v}`);
  const bad = (name: string, v: string, re: RegExp) => {
    const r = checkSelectorValue(name, v);
    assert.ok("problem" in r && re.test(r.problem), `${name}=${v}: ${JSON.stringify(r)}`);
  };
  ok("destination:port", "1");
  ok("source:port", "65535");
  bad("destination:port", "65536", /port 65536 is outside 1\.\.65535/);
  bad("destination:port", "080", /not a whole number/);
  bad("destination:port", "0x50", /not a whole number/);
  ok("process:uid", "0");
  ok("process:gid:additional", "4294967294");
  bad("process:uid:real", "4294967295", /uid 4294967295 is outside/);
  bad("process:gid", "root", /gid "root" is not a whole number/);
  ok("process:pid", "1");
  bad("process:pid", "0", /pid 0 is outside/);
  ok("destination:ip", "10.0.0.1");
  ok("source:ip", "::1", "0000:0000:0000:0000:0000:0000:0000:0001");
  ok("source:ip", "0000:0000:0000:0000:0000:0000:0000:0001");
  bad("destination:ip", "fe80::1%eth0", /the kernel prints no zone/);
  bad("destination:ip", "localhost", /not an IPv4 or IPv6 address/);
  ok("direction", "input");
  bad("direction", "inbound", /neither input nor output/);
  ok("process:name", "80000"); // untyped labels take anything
  ok("k8s:pod:name", "");
});
