import assert from "node:assert/strict";
import { configSchema } from "../config/schema.ts";
import { createAttestation, planAttestors } from "./builtin.ts";
import { taskContextFromProc } from "../../plugins/attestor/_lib/task_from_proc.ts";

Deno.test("builtin: the Go config keys pick the collectors; defaults as documented", () => {
  const { planned, problems } = planAttestors(configSchema.parse({}));
  assert.deepEqual(problems, []);
  assert.deepEqual(planned.map((p) => p.plugin.name), [
    "process",
    "systemd",
    "linuxos",
    "sysfsdmi",
  ]);
  const all = planAttestors(configSchema.parse({
    agent: {
      metadataCollectors: {
        docker: { enabled: true },
        kubernetes: { enabled: true, kubeletPort: 10255 },
        containerd: { enabled: true },
        ec2: { enabled: true },
        gcp: { enabled: true },
        azure: { enabled: true },
      },
    },
  }));
  assert.deepEqual(all.problems, []);
  assert.equal(all.planned.length, 10);
  assert.equal(
    (all.planned.find((p) => p.plugin.name === "kubernetes")!.config as { kubeletPort: number })
      .kubeletPort,
    10255,
  );
});

Deno.test("builtin: plugins.attestor.<name> adds settings; problems carry their path", () => {
  const ok = planAttestors(configSchema.parse({
    plugins: {
      attestor: { docker: { envAllowList: ["APP_*"] }, process: { envAllowList: ["LANG"] } },
    },
  }));
  assert.deepEqual(ok.problems, []);
  assert.equal(
    ok.planned.some((p) => p.plugin.name === "docker"),
    false,
    "docker stays off unless enabled",
  );
  const bad = planAttestors(configSchema.parse({
    agent: { metadataCollectors: { kubernetes: { enabled: true, kubeletPort: 10250 } } },
    plugins: { attestor: { nosuch: {}, kubernetes: { refreshMs: "soon" } } },
  }));
  assert.deepEqual(bad.problems.map((p) => p.field).sort(), [
    "plugins.attestor.kubernetes.refreshMs",
    "plugins.attestor.nosuch",
  ]);
});

Deno.test("builtin: createAttestation runs the configured budget and collectors", async () => {
  const a = await createAttestation(
    configSchema.parse({
      agent: {
        attestation: { budget: "5s" },
        metadataCollectors: { linuxos: { enabled: false }, sysfsdmi: { enabled: false } },
      },
    }),
    { sweepIntervalMs: 0 },
  );
  try {
    assert.deepEqual(a.attestors.map((x) => x.name), ["process", "systemd"]);
    const labels = await a.augmentLabels(taskContextFromProc(Deno.pid)!);
    assert.ok(labels.includes(`process:pid=${Deno.pid}`));
    assert.deepEqual(labels, [...labels].sort());
  } finally {
    await a.dispose();
  }
});
