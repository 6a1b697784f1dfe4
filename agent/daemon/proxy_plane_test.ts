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

Deno.test("traceMessage: a proxy connection outcome as the process's trace line", async () => {
  const { traceMessage } = await import("./proxy_plane.ts");
  const { matches, traceLine } = await import("../control/trace_hub.ts");
  const task = {
    uid: 1000,
    gid: 1000,
    pid: 4242,
    command_path: "/usr/bin/curl",
    command_name: "curl",
    cgroup_path: "/",
    namespace_ids: { uts: 0, ipc: 0, mnt: 0, pid: 0, net: 0, time: 0, cgroup: 0 },
  };
  const m = traceMessage({
    connection: {
      direction: "output",
      sourceIp: "127.0.0.1",
      sourcePort: 40000,
      destinationIp: "::1",
      destinationPort: 8000,
    },
    outcome: "denied",
    decision: {
      intercepted: true,
      mtls: true,
      allowedSPIFFEIDs: [],
      spiffeId: "spiffe://acme.test/curl",
      policy: { id: "p1" },
    },
    peerSpiffeId: "spiffe://acme.test/web",
    reason: "not allowed",
  }, task);
  assert.ok(matches({ command_name: "curl" }, m.task));
  assert.ok(!matches({ command_name: "python3" }, m.task));
  const line = traceLine(m, new Date(0));
  assert.equal(line.message, "Peer denied");
  assert.equal(line.level, "warn");
  assert.deepEqual({ ...line.fields }, {
    data_plane: "proxy",
    direction: "output",
    outcome: "denied",
    source: "127.0.0.1:40000",
    destination: "[::1]:8000",
    spiffe_id: "spiffe://acme.test/curl",
    peer_spiffe_id: "spiffe://acme.test/web",
    policy: "p1",
    reason: "not allowed",
  });
});
