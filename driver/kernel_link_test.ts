import assert from "node:assert/strict";
import {
  encodeLoadConfig,
  encodeLoadPolicies,
  encodeLoadSdInfo,
  encodeTraceRequest,
} from "./codec.ts";
import { syntheticTask, taskOf } from "./emulator/tasks.ts";
import { PayloadTooLargeError } from "./transport.ts";
import { openHarness } from "../tests/fakes/link_harness.ts";

Deno.test("kernel link over a real pty: requests, failures and the watchdog", async (t) => {
  const h = await openHarness();
  const { emu, ca } = h;
  try {
    await t.step("augment is answered with the handler's labels", async () => {
      const r = await emu.augment(syntheticTask(1, { command_name: "nginx" }));
      assert.equal(r.outcome, "answered");
      assert.deepEqual(r.labels, ["process:name=nginx", "test:attested=yes"]);
      assert.ok(r.latencyMs < 500, `latency ${r.latencyMs}`);
    });

    await t.step(
      "our own process (our accept) is answered at once from the task context",
      async () => {
        h.augment = () => new Promise(() => {}); // would hang: must not be asked
        const r = await emu.augment(taskOf(Deno.pid));
        h.augment = (task) =>
          Promise.resolve([`process:name=${task.command_name}`, "test:attested=yes"]);
        assert.equal(r.outcome, "answered");
        assert.ok(r.labels?.includes(`process:uid=${taskOf(Deno.pid).uid}`));
        assert.ok(r.latencyMs < 500, `latency ${r.latencyMs}`);
      },
    );

    await t.step("csr_sign is answered with a certificate that chains to the CA", async () => {
      const r = await emu.csrSign("spiffe://acme.test/web", { ttl: "3600s" });
      assert.equal(r.outcome, "issued", JSON.stringify(r.check?.problems));
      assert.equal(r.check?.spiffeId, "spiffe://acme.test/web");
    });

    await t.step("a slow CA (> 1 s) gets a refusal certificate before the deadline", async () => {
      ca.behaviour.delayMs = 1500;
      const r = await emu.csrSign("spiffe://acme.test/slow");
      ca.behaviour.delayMs = 0;
      assert.equal(r.outcome, "refused");
      assert.ok(r.latencyMs < 1000, `latency ${r.latencyMs}`);
      // Let the late signature finish inside the test, so nothing leaks.
      await new Promise((res) => setTimeout(res, 1000));
    });

    await t.step("a failing CA gets a refusal, never an error", async () => {
      ca.behaviour.failWith = "CA unavailable";
      const r = await emu.csrSign("spiffe://acme.test/fail");
      ca.behaviour.failWith = undefined;
      assert.equal(r.outcome, "refused");
    });

    await t.step("a CA answer the module cannot read is replaced by a refusal", async () => {
      ca.behaviour.garbage = '{"certificate":{"raw":"not base64!"},"chain":[],"trust_anchors":[]}';
      const r = await emu.csrSign("spiffe://acme.test/garbage");
      ca.behaviour.garbage = undefined;
      assert.equal(r.outcome, "refused");
    });

    await t.step("a failing attestation still answers with the task's labels", async () => {
      h.augment = () => Promise.reject(new Error("collector crashed"));
      const task = syntheticTask(7, {
        command_name: "curl",
        command_path: "/usr/bin/curl",
        uid: 501,
      });
      const r = await emu.augment(task);
      assert.equal(r.outcome, "answered");
      assert.deepEqual(r.labels?.sort(), [
        "process:binary:path=/usr/bin/curl",
        "process:gid=1000",
        "process:name=curl",
        "process:uid=501",
      ]);
    });

    await t.step("a hanging attestation is answered by the watchdog with task labels", async () => {
      let aborted = false;
      h.augment = (_task, signal) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener("abort", () => {
            aborted = true;
            setTimeout(() => reject(new Error("gave up")), 300);
          });
        });
      const r = await emu.augment(syntheticTask(8));
      assert.equal(r.outcome, "answered");
      assert.ok(r.latencyMs >= 550 && r.latencyMs < 1000, `latency ${r.latencyMs}`);
      assert.ok(aborted, "the handler's signal was aborted at the budget");
      await new Promise((res) => setTimeout(res, 400));
      h.augment = (task) => Promise.resolve([`process:name=${task.command_name}`]);
    });

    await t.step("every malformed kernel message kind is survived", async () => {
      const before = h.events.length;
      emu.injectRaw("{not json at all\n");
      emu.injectRaw('{"command":"augment","is_message":false}\n'); // missing id
      emu.injectRaw('"just a string"\n');
      emu.injectRaw('{"task_context":{},"id":"X","command":"augment","is_message":false}\n');
      // A line of 3 MiB (longer than any message the module can send).
      emu.injectRaw("{" + "x".repeat(3 * 1024 * 1024) + "}\n");
      // Unknown command with an id: answered with error.
      const unknown = await emu.request(
        `{"id":"${crypto.randomUUID().toUpperCase()}","command":"frobnicate","is_message":false}`,
      );
      assert.equal(unknown.outcome, "error");
      assert.equal(unknown.error, "invalid command");
      // Bad field types with a readable id: augment still answered (no labels vouched for).
      const badTask = await emu.request(JSON.stringify({
        task_context: { uid: "root" },
        id: crypto.randomUUID().toUpperCase(),
        command: "augment",
        is_message: false,
      }));
      assert.equal(badTask.outcome, "answered");
      assert.deepEqual(badTask.labels, []);
      // Two requests in one read.
      const a = crypto.randomUUID().toUpperCase();
      const b = crypto.randomUUID().toUpperCase();
      const two = [a, b].map((id) =>
        JSON.stringify({
          task_context: syntheticTask(1),
          id,
          command: "augment",
          is_message: false,
        })
      );
      const both = Promise.all([emu.request(two[0]!), emu.request(two[1]!)]);
      const results = await both;
      assert.deepEqual(results.map((r) => r.outcome), ["answered", "answered"]);
      const warnings = h.events.slice(before).filter((e) => e.message.startsWith("Malformed"));
      assert.ok(warnings.length >= 4, JSON.stringify(h.events.slice(before)));
      assert.ok(
        h.events.slice(before).some((e) =>
          e.message === "Malformed kernel line" && e.props["reason"] === "oversized"
        ),
      );
    });

    await t.step("log lines reach the trace handler", async () => {
      emu.sendLog({ message: "TLS handshake done", correlation_id: "42" }, syntheticTask(3));
      for (let i = 0; i < 50 && h.logs.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(h.logs[0]?.data.message, "TLS handshake done");
    });

    await t.step("configuration pushes arrive decoded, one message each", async () => {
      await h.link.push(encodeLoadConfig({ trust_domain: "acme.test" }), "load_config");
      await h.link.push(encodeTraceRequest({ action: "clear" }), "manage_trace_requests");
      await h.link.push(
        encodeLoadSdInfo({ "127.0.0.1:8000": { labels: ["app:label=web"] } }),
        "load_sd_info",
      );
      await h.link.push(
        encodeLoadPolicies({
          policies: [{
            position: 0,
            id: "p1",
            selectors: [{ "process:name=curl": true }],
            certificate: { workloadID: "curl" },
          }],
        }),
        "load_policies",
      );
      await emu.waitFor(() => emu.messages("load_policies").length === 1, "load_policies");
      assert.equal(emu.state.trustDomain, "acme.test");
      assert.deepEqual(emu.state.sdInfo, { "127.0.0.1:8000": { labels: ["app:label=web"] } });
      assert.equal(emu.state.policies.policies[0]?.id, "p1");
    });

    await t.step("a payload over the write budget is refused with its size", async () => {
      const huge = {
        policies: [{
          position: 0,
          id: "big",
          selectors: [{ ["x=" + "y".repeat(2_000_000)]: true as const }],
          certificate: { workloadID: "w" },
        }],
      };
      await assert.rejects(
        h.link.push(encodeLoadPolicies(huge), "load_policies from big.yaml"),
        (e: Error) =>
          e instanceof PayloadTooLargeError && /load_policies from big\.yaml/.test(e.message),
      );
    });

    await t.step("pushes beyond the budget wait for the kernel's next read", async () => {
      const mk = (n: number) => ({
        policies: [{
          position: 0,
          id: `b${n}`,
          selectors: [{ ["x=" + "y".repeat(600_000)]: true as const }],
          certificate: { workloadID: "w" },
        }],
      });
      // A request resets the budget window first.
      await emu.augment(syntheticTask(9));
      await h.link.push(encodeLoadPolicies(mk(1)), "load_policies", "load_policies");
      await h.link.push(encodeLoadPolicies(mk(2)), "load_policies", "load_policies");
      let third = false;
      const p3 = h.link.push(encodeLoadPolicies(mk(3)), "load_policies", "load_policies").then(() =>
        third = true
      );
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(third, false, "the third 800 KiB push waits: 2.4 MiB would overflow the module");
      await emu.augment(syntheticTask(10));
      await p3;
      await emu.waitFor(() => emu.state.policies.policies[0]?.id === "b3", "b3 applied");
    });

    const stats = await h.link.stats();
    assert.equal(Object.values(stats.dispatch.deadlineMisses).reduce((a, b) => a + b, 0), 0);
    assert.equal(emu.crash, undefined);
  } finally {
    await h.close();
  }
  emu.assertHealthy();
});
