/**
 * The agent as users run it (a subprocess: `camblet-agent run`), driven through the kernel
 * emulator over a real pty: startup order, requests, reload, the control socket, listeners
 * accepting under load with zero deadline misses, and shutdown.
 */
import assert from "node:assert/strict";
import { KernelEmulator, type RequestResult } from "../../driver/emulator/kernel_emulator.ts";
import { syntheticTask, taskOf } from "../../driver/emulator/tasks.ts";
import { ControlClient } from "../../agent/control/client.ts";
import type { AgentStatus } from "../../agent/daemon/status.ts";
import { startAgent } from "../fakes/agent_process.ts";
import { until } from "../fakes/until.ts";

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test("the agent drives the emulated kernel end to end", async (t) => {
  const emu = await KernelEmulator.open({ serializeCsrSign: false });
  const port = freePort();
  const agent = await startAgent(emu, { args: ["--metrics-address", `127.0.0.1:${port}`] });
  const control = new ControlClient(agent.socket);
  const python = new Deno.Command("/usr/bin/python3", {
    args: ["-c", "import time; time.sleep(120)"],
  }).spawn();
  try {
    await t.step("startup order: load_config, trace clear, load_sd_info, load_policies", () => {
      assert.deepEqual(emu.received.map((m) => m.command), [
        "load_config",
        "manage_trace_requests",
        "load_sd_info",
        "load_policies",
      ]);
      assert.equal(emu.received[1]!.message["data"], '{"action":"clear"}');
      assert.equal(emu.state.trustDomain, "acme.test");
      assert.deepEqual(emu.state.sdInfo, { "127.0.0.1:8000": { labels: ["app:label=web"] } });
      assert.deepEqual(emu.state.policies.policies.map((p) => p.certificate.workloadID), [
        "web",
        "curl",
      ]);
    });

    await t.step(
      "the control socket is 0600 in a 0700 directory and serves health and status",
      async () => {
        assert.equal(Deno.statSync(agent.socket).mode! & 0o777, 0o600);
        assert.equal(Deno.statSync(`${agent.dir}/run`).mode! & 0o777, 0o700);
        assert.equal(await (await control.get("/healthz")).text(), "ok\n");
        assert.equal((await control.get("/readyz")).status, 200);
        await (await control.get("/readyz")).body?.cancel();
        const s = await control.json<AgentStatus>("/v1/status");
        assert.equal(s.ready, true);
        assert.equal(s.trustDomain, "acme.test");
        assert.equal(s.policy.policies, 2);
        assert.equal(s.policy.revision, 1);
      },
    );

    await t.step(
      "augment gets the process's labels; csr_sign is issued for what policy allows",
      async () => {
        await until(
          () => Deno.readTextFileSync(`/proc/${python.pid}/comm`).trim() === "python3",
          "python3 to start",
        );
        const task = taskOf(python.pid);
        const a = await emu.augment(task);
        assert.equal(a.outcome, "answered");
        assert.ok(a.labels?.includes("process:name=python3"), a.labels?.join(" "));
        const ok = await emu.csrSign("spiffe://acme.test/web", { ttl: "3600s", task });
        assert.equal(ok.outcome, "issued", ok.check?.problems.join("; "));
        assert.equal(ok.check?.spiffeId, "spiffe://acme.test/web");
        const no = await emu.csrSign("spiffe://acme.test/curl", { ttl: "3600s", task });
        assert.equal(no.outcome, "refused", "python3 may not be curl");
      },
    );

    await t.step(
      "a policy file change pushes only load_policies; a bad one is rejected",
      async () => {
        const before = emu.received.length;
        const file = `${agent.dir}/policies/extra.yaml`;
        // Write elsewhere, then rename over: what editors do.
        await Deno.writeTextFile(
          `${agent.dir}/extra.tmp`,
          "- selectors: [{process:name: nginx}]\n  certificate: {workloadID: nginx}\n",
        );
        await Deno.rename(`${agent.dir}/extra.tmp`, file);
        await emu.waitFor(() => emu.received.length > before, "a push after the file change");
        await new Promise((r) => setTimeout(r, 500));
        assert.deepEqual(emu.received.slice(before).map((m) => m.command), ["load_policies"]);
        assert.equal(emu.state.policies.policies.length, 3);
        const pushed = emu.received.length;
        await Deno.writeTextFile(
          file,
          "- selectors: [{process:name: nginx}]\n  certificate: {workloadID: 'bad id with spaces'}\n",
        );
        await until(
          async () =>
            (await control.json<AgentStatus>("/v1/status")).policy.lastReload?.outcome ===
              "rejected",
          "the rejection",
        );
        const s = await control.json<AgentStatus>("/v1/status");
        assert.match(s.policy.lastReload!.problems.join("\n"), /extra\.yaml/);
        assert.equal(emu.received.length, pushed, "nothing pushed");
        assert.equal(emu.state.policies.policies.length, 3, "the last good set stays");
        await Deno.remove(file);
        await emu.waitFor(() => emu.state.policies.policies.length === 2, "the policy removed");
      },
    );

    await t.step("SIGHUP re-validates; an unchanged set pushes nothing", async () => {
      const before = emu.received.length;
      agent.kill("SIGHUP");
      await until(
        async () =>
          (await control.json<AgentStatus>("/v1/status")).policy.lastReload?.reason === "sighup",
        "the SIGHUP reload",
      );
      assert.equal(emu.received.length, before);
    });

    await t.step("a SIGHUP amid file events still reloads as a SIGHUP", async () => {
      // The file's own events arrive around the signal; the reloads they coalesce into must
      // include the SIGHUP's (config re-read, every source refreshed), and say so in the log.
      const from = agent.log().length;
      const file = `${agent.dir}/policies/burst.yaml`;
      await Deno.writeTextFile(
        file,
        "- selectors: [{process:name: redis}]\n  certificate: {workloadID: redis}\n",
      );
      agent.kill("SIGHUP");
      await emu.waitFor(() => emu.state.policies.policies.length === 3, "the new policy pushed");
      await until(() => /reason=sighup/.test(agent.log().slice(from)), "a reload logged as sighup");
      assert.match(agent.log().slice(from), /"SIGHUP: reloading configuration and every source"/);
      await Deno.remove(file);
      await emu.waitFor(() => emu.state.policies.policies.length === 2, "the policy removed");
    });

    await t.step(
      "zero deadline misses while the agent's listeners accept connections",
      async () => {
        let stop = false;
        let accepted = 0;
        const hammer = async (get: () => Promise<Response>) => {
          while (!stop) {
            const r = await get();
            await r.body?.cancel();
            accepted++;
          }
        };
        const clients = [
          ...Array.from(
            { length: 8 },
            () => hammer(() => fetch(`http://127.0.0.1:${port}/metrics`)),
          ),
          ...Array.from({ length: 8 }, () => hammer(() => control.get("/v1/status"))),
        ];
        const task = taskOf(python.pid);
        // A fixed amount of work, not a rate: at least 12 waves of 20 augments and a csr_sign,
        // and on until the listeners have served 50 connections alongside (the machine may be
        // slow; starving either side is the failure).
        const results: RequestResult[] = [];
        let waves = 0;
        for (; (waves < 12 || accepted < 50) && waves < 1000; waves++) {
          const wave: Promise<RequestResult>[] = [];
          for (let j = 0; j < 20; j++) wave.push(emu.augment(syntheticTask(waves * 20 + j)));
          wave.push(emu.csrSign("spiffe://acme.test/web", { ttl: "3600s", task }));
          results.push(...await Promise.all(wave));
        }
        stop = true;
        await Promise.all(clients);
        assert.ok(accepted >= 50, `listeners accepted ${accepted} connections in ${waves} waves`);
        assert.equal(results.length, waves * 21);
        const bad = results.filter((r) => !["answered", "issued", "refused"].includes(r.outcome));
        assert.deepEqual(bad, []);
        const s = await control.json<AgentStatus>("/v1/status");
        assert.equal(s.kernel?.deadlineMisses, 0);
        emu.assertHealthy();
      },
    );

    await t.step("metrics over TCP and the socket", async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const { revision } = (await control.json<AgentStatus>("/v1/status")).policy;
      assert.ok(revision >= 5, `five pushes so far, revision ${revision}`);
      for (
        const name of [
          'camblet_kernel_requests_total{command="augment",outcome="ok"}',
          'camblet_kernel_answer_duration_seconds_bucket{command="csr_sign",le="+Inf"}',
          'camblet_kernel_deadline_misses_total{command="csr_sign"} 0',
          "camblet_certificates_issued_total",
          `camblet_policy_revision ${revision}`,
          'camblet_plugin_up{kind="ca",name="self-signed"} 1',
          "process_resident_memory_bytes",
        ]
      ) assert.ok(text.includes(name), `missing ${name}`);
      const r = await fetch(`http://127.0.0.1:${port}/v1/status`);
      assert.equal(r.status, 404, "TCP serves metrics only");
      await r.body?.cancel();
    });

    await t.step("SIGTERM: graceful exit 0", async () => {
      assert.equal(await agent.stop("SIGTERM"), 0);
      assert.match(agent.log(), /Stopping.*SIGTERM/);
    });
  } finally {
    control.close();
    python.kill();
    await python.status;
    await agent.stop("SIGKILL");
    await emu.close();
  }
  emu.assertHealthy();
});

Deno.test("a closed kernel device is fatal: exit 1", async () => {
  const emu = await KernelEmulator.open();
  const agent = await startAgent(emu);
  await emu.close();
  const code = await agent.stop("SIGCONT");
  assert.equal(code, 1, agent.log());
  assert.match(agent.log(), /kernel link lost/);
});
