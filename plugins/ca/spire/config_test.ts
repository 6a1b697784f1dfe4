import assert from "node:assert/strict";
import { DEFAULT_WORKLOAD_SOCKET, parseSpireConfig } from "./config.ts";

Deno.test("spire config", async (t) => {
  await t.step("defaults; SPIFFE_ENDPOINT_SOCKET names the socket", () => {
    const r = parseSpireConfig({ serverAddress: "spire-server" }, {});
    assert.ok(r.ok);
    assert.deepEqual(
      [
        r.value.workloadSocket,
        r.value.serverHost,
        r.value.serverPort,
        r.value.caTtlMs,
        r.value.kernelDriver,
      ],
      [DEFAULT_WORKLOAD_SOCKET, "spire-server", 8081, 24 * 3_600_000, true],
    );
    const env = parseSpireConfig({ serverAddress: "10.0.0.1:9000" }, {
      SPIFFE_ENDPOINT_SOCKET: "unix:///run/spire/api.sock",
    });
    assert.ok(env.ok);
    assert.equal(env.value.workloadSocket, "unix:///run/spire/api.sock");
    assert.equal(env.value.serverPort, 9000);
  });
  await t.step("every problem at once", () => {
    const r = parseSpireConfig({ workloadSocket: "api.sock", caTtl: "x", other: true }, {});
    assert.ok(!r.ok);
    assert.deepEqual(r.problems.map((p) => p.field).sort(), [
      "caTtl",
      "other",
      "serverAddress",
      "workloadSocket",
    ]);
    const bad = parseSpireConfig({ serverAddress: "host:99999" }, {});
    assert.ok(!bad.ok);
    assert.match(bad.problems[0]!.message, /Cannot parse "host:99999" as host:port/);
  });
});
