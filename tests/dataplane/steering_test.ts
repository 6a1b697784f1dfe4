/**
 * The eBPF steering on its own, in a network namespace of our own (see _steer_probe.ts). Needs
 * root, libbpf1 and cgroup v2; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { skip as skipped } from "../_skip.ts";
import { NetnsPair, netnsSkipReason } from "./_netns.ts";

const skip = await netnsSkipReason();

const PROBE = new URL("./_steer_probe.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

Deno.test({
  name: "steering: redirect, original destination, getpeername, exclusions, sk_lookup, detach",
  ignore: skipped(skip),
  async fn(t) {
    const pair = await NetnsPair.create("s");
    try {
      const r = await pair.exec(pair.a, [
        Deno.execPath(),
        "run",
        "-A",
        "--quiet",
        `--config=${CONFIG}`,
        PROBE,
        pair.b,
      ], 60_000);
      assert.equal(r.code, 0, r.stderr);
      const got = JSON.parse(r.stdout.trim().split("\n").pop()!);

      await t.step("programs attached: cgroup hooks and sk_lookup", () => {
        assert.deepEqual([...got.attached].sort(), [
          "camblet_connect4",
          "camblet_connect6",
          "camblet_getpeername4",
          "camblet_getpeername6",
          "camblet_sk_lookup",
          "camblet_sockops",
        ]); // deno-fmt-ignore
      });
      await t.step("setProtected replaces the table", () => {
        assert.deepEqual(got.protected, [
          "10.199.0.1:8000",
          "127.0.0.1:8000",
          "127.0.0.7:0",
          "::1:8000",
        ]);
      });
      await t.step("IPv4 connect: redirected, origin recorded, getpeername unchanged", () => {
        assert.equal(got.v4, "orig 127.0.0.1 8000 pid=true uid=0|127.0.0.1|8000");
      });
      await t.step("AF_INET6 socket to a v4-mapped address (dual-stack apps)", () => {
        assert.equal(got.v4mapped, "orig 127.0.0.1 8000 pid=true uid=0|::ffff:127.0.0.1|8000");
      });
      await t.step("real IPv6", () => {
        assert.equal(got.v6, "orig ::1 8000 pid=true uid=0|::1|8000");
      });
      await t.step("an address protected on every port", () => {
        assert.equal(got.anyPort, "orig 127.0.0.7 4321 pid=true uid=0|127.0.0.7|4321");
      });
      await t.step("unprotected destination untouched", () => {
        assert.equal(got.unprotected, "app8001|::1|8001");
      });
      await t.step("the agent's own connection is not redirected", () => {
        assert.equal(got.agentOwn, "app8000");
      });
      await t.step("a process in another network namespace is not redirected", () => {
        assert.equal(got.otherNetns, "app8000|10.199.0.1|8000");
      });
      await t.step("origin records are consumed; unknown clients have none", () => {
        assert.equal(got.originConsumed, true);
      });
      await t.step(
        "inbound: sk_lookup hands the SYN to the agent, which sees the original port",
        () => {
          assert.equal(got.inbound, "agent-listener 10.199.0.1 8100|10.199.0.1|8100");
        },
      );
      await t.step("inbound: the agent's onward leg (bound source) reaches the application", () => {
        assert.equal(got.onward, "app8100");
      });
      await t.step(
        "inbound: an agent connect without bound source is steered (same-host peers)",
        () => {
          assert.equal(got.agentUnbound, "agent-listener 10.199.0.1 8100");
        },
      );
      await t.step("inbound: no agent listener → the application gets it (fail-open)", () => {
        assert.equal(got.noListener, "app8100|10.199.0.1|8100");
      });
      await t.step("counters", () => {
        assert.equal(got.stats.redirected, 4); // v4, v4-mapped, v6, any-port
        assert.equal(got.stats.recorded, 4);
        assert.equal(got.stats.steered, 2);
        assert.equal(got.stats.bypassed, 1);
        assert.ok(got.stats.peername >= 4);
      });
      await t.step("close detaches: connections go direct", () => {
        assert.deepEqual(got.attachedAfterClose, []);
        assert.equal(got.afterClose, "app8000|127.0.0.1|8000");
      });
    } finally {
      await pair.cleanup();
    }
  },
});
