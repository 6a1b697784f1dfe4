import assert from "node:assert/strict";
import { serviceKey } from "../policy/address.ts";
import { destinationOf } from "./proxy_plane.ts";

Deno.test("destinationOf reads the service table's keys back (IPv4, IPv6, with and without port)", () => {
  assert.deepEqual(destinationOf("10.0.0.5"), { ip: "10.0.0.5" });
  assert.deepEqual(destinationOf(serviceKey("10.0.0.5", 8000)!), { ip: "10.0.0.5", port: 8000 });
  const v6 = serviceKey("fd00::1", 443)!;
  assert.deepEqual(destinationOf(v6), {
    ip: "fd00:0000:0000:0000:0000:0000:0000:0001",
    port: 443,
  });
  assert.deepEqual(destinationOf("fd00:0000:0000:0000:0000:0000:0000:0001"), {
    ip: "fd00:0000:0000:0000:0000:0000:0000:0001",
  });
});
