/**
 * Under load the process attestor can be late; the labels the kernel's task context proves must
 * still be there (else valid identities are refused as "not assignable"), and the agent's own
 * warm-up must not warn about collections it cut short itself.
 */
import assert from "node:assert/strict";
import type { Logger } from "@logtape/logtape";
import { Attestation } from "./runner.ts";
import { fakeAttestor } from "../../tests/fakes/attestor_fakes.ts";
import { taskOf } from "../../driver/emulator/tasks.ts";

function recordingLogger(): { log: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const log = {
    warn: (m: string) => void warnings.push(m),
    warning: (m: string) => void warnings.push(m),
    debug: () => {},
    info: () => {},
    error: (m: string) => void warnings.push(m),
  } as unknown as Logger;
  return { log, warnings };
}

Deno.test("augment labels: the task context's labels are there when the process attestor is late", async () => {
  const a = new Attestation([
    fakeAttestor({ name: "process", hang: true }),
    fakeAttestor({ name: "k8s", labels: () => ({ "k8s:pod:name": ["web-0"] }) }),
  ], { budgetMs: 50, sweepIntervalMs: 0, log: recordingLogger().log });
  try {
    const task = taskOf(Deno.pid);
    const labels = await a.augmentLabels(task);
    for (const l of [`process:name=${task.command_name}`, `process:uid=${task.uid}`]) {
      assert.ok(labels.includes(l), `${l} in ${labels}`);
    }
    assert.ok(labels.includes("k8s:pod:name=web-0"));
    assert.deepEqual(labels, [...labels].sort());
  } finally {
    await a.dispose();
  }
});

Deno.test("augment labels: an attestor's own value for a task label is kept, not doubled", async () => {
  const a = new Attestation([
    fakeAttestor({ name: "process", labels: () => ({ "process:name": ["from-proc"] }) }),
  ], { sweepIntervalMs: 0 });
  try {
    const labels = await a.augmentLabels(taskOf(Deno.pid));
    assert.deepEqual(labels.filter((l) => l.startsWith("process:name=")), [
      "process:name=from-proc",
    ]);
  } finally {
    await a.dispose();
  }
});

Deno.test("warm-up: collections cut short while warming are not warnings", async () => {
  const { log, warnings } = recordingLogger();
  const a = new Attestation([fakeAttestor({ name: "slow", delayMs: 5_000 })], {
    budgetMs: 20,
    sweepIntervalMs: 0,
    warmConcurrency: 4,
    log,
  });
  try {
    const warmed = await a.start();
    assert.ok(warmed > 0);
    assert.deepEqual(warnings, []);
  } finally {
    await a.dispose();
  }
});
