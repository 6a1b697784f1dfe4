import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { externalPlugin } from "../../plugins/external.ts";
import { loadPlugins, type PluginSelection } from "../../plugins/loader.ts";
import { sha256File } from "../../plugins/_sha256.ts";
import type { PluginInstance } from "../../plugins/types.ts";
import { FAKE_PLUGIN, testContext } from "../../tests/fakes/ca_plugins.ts";
import { renderMetrics } from "../control/metrics.ts";
import { PluginHealth } from "./plugin_health.ts";

const SHA = await sha256File(FAKE_PLUGIN);

/** The fake plugin (tests/fakes/ca_fake_plugin.ts) answering `plugin.health` from `file`. */
function fake(kind: "ca" | "attestor", file: string, restartBackoff = "50ms"): PluginSelection {
  return {
    kind,
    name: `fake-${kind}`,
    path: `plugins.external[${kind}]`,
    definition: externalPlugin(kind, `fake-${kind}`),
    config: {
      kind,
      name: `fake-${kind}`,
      path: FAKE_PLUGIN,
      args: [`--kind=${kind}`, `--health-file=${file}`],
      sha256: SHA,
      startTimeout: "30s", // a Deno child can take seconds to start on a loaded CI machine
      restartBackoff,
    },
  };
}

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 30_000) {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Records the health monitor's log lines. */
async function captureLogs(): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { mem: (r) => records.push(r) },
    loggers: [{ category: ["camblet", "plugins"], lowestLevel: "info", sinks: ["mem"] }, {
      category: ["logtape", "meta"],
      lowestLevel: "error",
      sinks: ["mem"],
    }],
  });
  return records;
}

const messages = (records: LogRecord[]) =>
  records.map((r) => `${r.level} ${r.message.join("")} ${r.properties["name"]}`);

function metricsText(up: Record<string, number>): string {
  return renderMetrics(undefined, {
    ready: true,
    policyRevision: 1,
    policies: 0,
    services: 0,
    reloads: {},
    plugins: up,
    traceSubscribers: 0,
  });
}

Deno.test("plugin health checks", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "plugin-health-" });
  try {
    await t.step(
      "external CA and attestor: plugin.health flips them down with the message and up again",
      async () => {
        const caFile = `${dir}/ca-health`;
        const attestorFile = `${dir}/attestor-health`;
        const plugins = await loadPlugins(
          [fake("attestor", attestorFile), fake("ca", caFile)],
          { enforce: ["ca", "attestor"], context: testContext },
        );
        const records = await captureLogs();
        // A short interval stands in for the daemon's 15 s: the timer, not the test, re-checks.
        const health = new PluginHealth(plugins.all, { intervalMs: 100 });
        try {
          health.start();
          await health.check();
          assert.deepEqual(health.up(), { "attestor/fake-attestor": 1, "ca/fake-ca": 1 });

          await Deno.writeTextFile(caFile, "upstream sealed");
          await Deno.writeTextFile(attestorFile, "cannot reach the metadata service");
          await until("the CA down", () => health.up()["ca/fake-ca"] === 0);
          await until("the attestor down", () => health.up()["attestor/fake-attestor"] === 0);
          const s = health.status();
          assert.equal(s["ca/fake-ca"]!.up, false);
          assert.equal(s["ca/fake-ca"]!.message, "upstream sealed");
          assert.equal(s["attestor/fake-attestor"]!.message, "cannot reach the metadata service");
          assert.ok(Date.parse(s["ca/fake-ca"]!.checkedAt) > Date.now() - 10_000);
          assert.ok(
            metricsText(health.up()).includes('camblet_plugin_up{kind="ca",name="fake-ca"} 0'),
          );

          // Several more rounds while down: still one warning each.
          const checked = s["ca/fake-ca"]!.checkedAt;
          await until("another round", () => health.status()["ca/fake-ca"]!.checkedAt !== checked);
          await Deno.writeTextFile(caFile, "");
          await until("the CA up again", () => health.up()["ca/fake-ca"] === 1);
          assert.equal(health.status()["ca/fake-ca"]!.message, undefined);
          assert.ok(
            metricsText(health.up()).includes('camblet_plugin_up{kind="ca",name="fake-ca"} 1'),
          );
          assert.deepEqual(messages(records).sort(), [
            "info Plugin healthy again fake-ca",
            "warning Plugin unhealthy fake-attestor",
            "warning Plugin unhealthy fake-ca",
          ]);
          const warning = records.find((r) => r.properties["name"] === "fake-ca")!;
          assert.deepEqual(warning.properties, {
            kind: "ca",
            name: "fake-ca",
            message: "upstream sealed",
          });
        } finally {
          await health.dispose();
          await plugins.dispose();
          await reset();
        }
      },
    );

    await t.step("a plugin that dies is down while it restarts, up once it answers", async () => {
      const file = `${dir}/dies`;
      // A long backoff keeps it `restarting` for the second check.
      const plugins = await loadPlugins([fake("ca", file, "1s")], {
        enforce: ["ca"],
        context: testContext,
      });
      const health = new PluginHealth(plugins.all);
      try {
        await Deno.writeTextFile(file, "exit");
        await health.check();
        assert.deepEqual(health.status()["ca/fake-ca"]!.up, false);
        assert.match(health.status()["ca/fake-ca"]!.message!, /Plugin exited with code 5/);
        await health.check();
        assert.match(
          health.status()["ca/fake-ca"]!.message!,
          /^Cannot call plugin\.health: plugin is (restarting|starting)/,
        );
        assert.equal(health.up()["ca/fake-ca"], 0);
        await until("up after the restart", async () => {
          await health.check();
          return health.up()["ca/fake-ca"] === 1;
        });
      } finally {
        await health.dispose();
        await plugins.dispose();
      }
    });

    await t.step("in-process plugins: no health() is up; late or throwing is down", async () => {
      let calls = 0;
      const never: PluginInstance = {
        health: () => {
          calls++;
          return new Promise(() => {}); // ignores its signal
        },
      };
      const throws: PluginInstance = {
        health: () => {
          throw new Error("ca(x): Cannot read the signer");
        },
      };
      const health = new PluginHealth([
        { kind: "attestor", name: "plain", instance: {} },
        { kind: "attestor", name: "never", instance: never },
        { kind: "ca", name: "x", instance: throws },
      ], { timeoutMs: 100 });
      try {
        const started = Date.now();
        // Rounds never overlap: a second caller shares the round in flight.
        await Promise.all([health.check(), health.check()]);
        assert.ok(Date.now() - started < 1500, "bounded by the timeout");
        assert.equal(calls, 1);
        assert.deepEqual(health.up(), { "attestor/plain": 1, "attestor/never": 0, "ca/x": 0 });
        assert.equal(
          health.status()["attestor/never"]!.message,
          "health check: no answer within 100 ms",
        );
        assert.equal(health.status()["ca/x"]!.message, "ca(x): Cannot read the signer");
      } finally {
        await health.dispose();
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
