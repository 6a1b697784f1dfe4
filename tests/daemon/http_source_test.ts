/**
 * The agent with an `http` bundle source, polled: after each kind of bad bundle the emulated
 * kernel still holds the last good policies and services and nothing was pushed; a good bundle
 * after them is pushed as `load_policies` only. (tests/sources/http_sources_test.ts checks the
 * same failures on the sources alone; this is what reaches the kernel.)
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";
import { ControlClient } from "../../agent/control/client.ts";
import type { AgentStatus } from "../../agent/daemon/status.ts";
import { startAgent } from "../fakes/agent_process.ts";
import {
  makeBundle,
  makeTarGz,
  namedPolicy,
  signedFleet,
  signingKey,
} from "../sources/_bundles.ts";
import { BundleServer } from "../sources/_bundle_server.ts";
import { until } from "../fakes/until.ts";

const policy = namedPolicy;

Deno.test("an http source: bad bundles leave the kernel's policies alone", async (t) => {
  const server = BundleServer.start();
  const key = await signingKey();
  const sign = { privateKey: key.privateKey };
  const good = signedFleet(sign);
  server.serve = { kind: "bundle", body: await good("r1", ["fleet"]) };
  const dir = await Deno.makeTempDir({ prefix: "camblet-http-source-" });
  const config = join(dir, "config.yaml");
  await Deno.writeTextFile(
    config,
    JSON.stringify({
      plugins: {
        policySource: [{
          type: "http",
          name: "hub",
          url: server.url(),
          pollInterval: "200ms",
          retryMin: "50ms",
          jitter: 0,
          timeout: "1s",
          verification: { key: key.publicPem },
        }],
      },
    }),
  );
  const emu = await KernelEmulator.open();
  const agent = await startAgent(emu, { args: ["--config", config] });
  const control = new ControlClient(agent.socket);
  const hub = async () =>
    (await control.json<AgentStatus>("/v1/status")).sources.sources.find((s) =>
      s.id === "http(hub)"
    )!;
  const checks = (n: number) => {
    const seen = server.seen.length;
    return until(() => Promise.resolve(server.seen.length >= seen + n), `${n} more checks`);
  };
  const ids = () => emu.state.policies.policies.map((p) => p.certificate.workloadID).sort();
  try {
    await t.step("the first bundle is in force", () => {
      assert.deepEqual(ids(), ["curl", "fleet", "web"], agent.log());
      assert.ok(emu.state.sdInfo["10.0.0.7:443"], "the bundle's service");
    });
    const inForce = structuredClone(emu.state.policies);
    const services = structuredClone(emu.state.sdInfo);

    const bad: [string, () => Promise<Uint8Array> | Uint8Array, RegExp, string][] = [
      ["500", () => new Uint8Array(), /500 Internal Server Error/, "failing"],
      [
        "garbage",
        () => new Uint8Array([0x1f, 0x8b, ...crypto.getRandomValues(new Uint8Array(300))]),
        /truncated or corrupt/,
        "failing",
      ],
      [
        "truncated",
        async () => (await good("r9", ["fleet", "x"])).subarray(0, 200),
        /truncated or corrupt/,
        "failing",
      ],
      [
        "unsigned",
        () => makeBundle({ revision: "r9", files: { "policies/x.yaml": policy("x") } }),
        /not signed/,
        "failing",
      ],
      [
        "wrongly signed",
        async () =>
          makeBundle({
            revision: "r9",
            files: { "policies/x.yaml": policy("x") },
            sign: { privateKey: (await signingKey()).privateKey },
          }),
        /does not verify with the configured key/,
        "failing",
      ],
      [
        "traversal",
        () => makeTarGz([{ name: "policies/../../../x.yaml", data: policy("x") }]),
        /climbs out of the source/,
        "failing",
      ],
      [
        "signed, but not a policy",
        () =>
          makeBundle({
            revision: "r9",
            files: { "policies/x.yaml": "- selectors: nope\n" },
            sign,
          }),
        /policies\/x.yaml:1: item 0: selectors: /,
        "rejected",
      ],
    ];
    for (const [name, body, why, state] of bad) {
      await t.step(`${name}: nothing pushed, the last good set stays`, async () => {
        const pushed = emu.received.length;
        const b = await body();
        server.serve = name === "500"
          ? { kind: "status", status: 500, body: "db down" }
          : { kind: "bundle", body: b };
        // Checks are sequential: once a second one starts, the first to get this bundle is done.
        await checks(2);
        const s = await hub();
        assert.equal(s.state, state);
        assert.match(s.lastError!.problems.join("\n"), why);
        // A push follows a change within the sources' and the daemon's debounce (~300 ms).
        await checks(3);
        assert.deepEqual(
          emu.received.slice(pushed).map((m) => m.command),
          [],
          "nothing pushed to the kernel",
        );
        assert.deepEqual(emu.state.policies, inForce);
        assert.deepEqual(emu.state.sdInfo, services);
      });
    }

    await t.step("a good bundle after them is pushed, as load_policies only", async () => {
      const before = emu.received.length;
      server.serve = { kind: "bundle", body: await good("r2", ["fleet", "api"]) };
      await emu.waitFor(() => ids().includes("api"), "the good bundle's policies");
      assert.deepEqual(ids(), ["api", "curl", "fleet", "web"]);
      assert.deepEqual(emu.received.slice(before).map((m) => m.command), ["load_policies"]);
      assert.deepEqual(emu.state.sdInfo, services);
      const s = await hub();
      assert.equal(s.state, "ok");
      assert.equal(s.revision, "r2");
    });
  } finally {
    control.close();
    await agent.stop("SIGTERM");
    await emu.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
  emu.assertHealthy();
});
