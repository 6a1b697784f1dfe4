/**
 * Never late, by construction: a burst of 1,000 `csr_sign` queued at once while 4 busy-loop
 * processes compete for the CPU gets 1,000 answers, each a certificate (issued or a refusal), none
 * an `error`, none later than the kernel's 1 s after it was queued (the emulator measures from
 * queueing to its read of the answer, and counts a late or missing answer as a kernel crash).
 * The same holds with the CA plugin hanging, with the attestors hanging, and with the main thread
 * blocked. The first two run the real agent by its CLI; the last two put the daemon's own kernel
 * worker and identity manager (real self-signed CA, real attestation runner) in this process, so
 * that a hanging attestor and a blocked main thread are real.
 */
import { exclusive } from "../_exclusive.ts";
import assert from "node:assert/strict";
import { join } from "node:path";
import { KernelEmulator, type RequestResult } from "../../driver/emulator/kernel_emulator.ts";
import { taskOf } from "../../driver/emulator/tasks.ts";
import { KernelLink } from "../../driver/kernel_link.ts";
import { encodeBase64 } from "../../driver/codec.ts";
import { Attestation } from "../../agent/attestation/runner.ts";
import { spawnKernelWorker } from "../../agent/daemon/kernel_worker.ts";
import { AuditLog } from "../../agent/identity/audit.ts";
import { IdentityManager } from "../../agent/identity/manager.ts";
import { MetricsRegistry } from "../../plugins/sdk/metrics.ts";
import { startAgent } from "../fakes/agent_process.ts";
import { fakeAttestor } from "../fakes/attestor_fakes.ts";
import { benchSelfSignedCa } from "../fakes/bench_ca.ts";
import { FAKE_PLUGIN } from "../fakes/ca_plugins.ts";
import { capturePayloads } from "../fakes/identity_capture.ts";

const BURST = 1000;
const BUSY = 4;

function busyLoops(n: number): Deno.ChildProcess[] {
  return Array.from({ length: n }, () =>
    new Deno.Command("/bin/sh", {
      args: ["-c", "while :; do :; done"],
      stdout: "null",
      stderr: "null",
    }).spawn());
}

/** Runs `fn` against the busy loops, never beside another machine-loading test (the lock). */
function withContention<T>(fn: () => Promise<T>): Promise<T> {
  return exclusive(async () => {
    const busy = busyLoops(BUSY);
    try {
      return await fn();
    } finally {
      for (const p of busy) {
        p.kill("SIGKILL");
        await p.status;
      }
    }
  });
}

/** A real python3 (attestation reads /proc): the policies give it spiffe://acme.test/web. */
const pythonProcess = new Deno.Command("/usr/bin/python3", {
  args: ["-c", "import time; time.sleep(3600)"],
}).spawn();
globalThis.addEventListener("unload", () => pythonProcess.kill("SIGKILL"));
await new Promise((r) => setTimeout(r, 200));
const python = taskOf(pythonProcess.pid);

function ask(emu: KernelEmulator): Promise<RequestResult> {
  return emu.csrSign("spiffe://acme.test/web", { ttl: "3600s", task: python });
}

/** Queues the whole burst at once; resolves with every result. */
async function burst(emu: KernelEmulator, count = BURST): Promise<RequestResult[]> {
  await emu.csrs.csr("spiffe://acme.test/web");
  return await Promise.all(Array.from({ length: count }, () => ask(emu)));
}

/** Every answer a certificate, in time; returns the outcome counts. */
function assertAllInTime(emu: KernelEmulator, results: RequestResult[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of results) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
  assert.equal(results.length, BURST);
  const bad = results.filter((r) =>
    (r.outcome !== "issued" && r.outcome !== "refused") || r.latencyMs >= 1000
  );
  const worst = Math.max(...results.map((r) => r.latencyMs));
  assert.equal(
    bad.length,
    0,
    `${bad.length} of ${BURST} answers late or not a certificate: ${JSON.stringify(counts)}, ` +
      `worst ${worst.toFixed(0)} ms; first: ${JSON.stringify(bad[0])?.slice(0, 300)}`,
  );
  emu.assertHealthy();
  return counts;
}

Deno.test("1,000 queued csr_sign under 4 busy loops: every one a certificate, in time", async () => {
  const emu = await KernelEmulator.open({ serializeCsrSign: false });
  const agent = await startAgent(emu);
  try {
    assert.equal((await ask(emu)).outcome, "issued", "the policies give python3 this identity");
    const results = await withContention(() => burst(emu));
    assertAllInTime(emu, results);
  } finally {
    await agent.stop();
    await emu.close();
  }
});

Deno.test("1,000 queued csr_sign, CA plugin hanging, 4 busy loops: all refused in time", async () => {
  const dir = await Deno.makeTempDir({ prefix: "burst-hang-ca-" });
  const config = join(dir, "config.yaml");
  await Deno.writeTextFile(
    config,
    `agent:\n  ca: fake\nplugins:\n  external:\n    - kind: ca\n      name: fake\n` +
      `      path: ${FAKE_PLUGIN}\n      args: ["--mode=hang-sign"]\n      startTimeout: 30s\n`,
  );
  const emu = await KernelEmulator.open({ serializeCsrSign: false });
  const agent = await startAgent(emu, { args: ["--config", config] });
  try {
    const results = await withContention(() => burst(emu));
    const counts = assertAllInTime(emu, results);
    assert.deepEqual(counts, { refused: BURST });
  } finally {
    await agent.stop();
    await emu.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** The daemon's kernel worker and identity manager in this process, on the real self-signed CA. */
async function inProcess(attestors: Parameters<typeof fakeAttestor>[0][]) {
  const emu = await KernelEmulator.open({ serializeCsrSign: false });
  const ca = await benchSelfSignedCa("burst-test-ca-");
  const payloads = await capturePayloads();
  const attestation = new Attestation(attestors.map(fakeAttestor), { sweepIntervalMs: 0 });
  const labelsFor = (task: typeof python, signal: AbortSignal) =>
    attestation.augmentLabels(task, signal);
  const manager = await IdentityManager.create({
    ca,
    trustDomain: "acme.test",
    payloads: () => payloads,
    labelsFor,
    defaultCertTtlMs: 3_600_000,
    audit: new AuditLog({ capacity: 10 }),
    metrics: new MetricsRegistry(),
  });
  const anchors = (await ca.trustBundle()).map((d) => encodeBase64(d));
  const link = await KernelLink.open(spawnKernelWorker(), {
    device: emu.path,
    setup: { anchors },
    handlers: {
      augment: labelsFor,
      csrSign: (task, data, id) =>
        manager.signForKernel({
          task,
          data: data as unknown as Record<string, unknown>,
          ...(id ? { id } : {}),
        }),
      log: () => {},
    },
  });
  return {
    emu,
    async close() {
      await link.close();
      await emu.close();
      await attestation.dispose();
      await ca.dispose();
    },
  };
}

Deno.test("1,000 queued csr_sign, attestors hanging, 4 busy loops: in time, task labels assign", async () => {
  const h = await inProcess([{ name: "hung", hang: true }, { name: "slow", delayMs: 60_000 }]);
  try {
    const results = await withContention(() => burst(h.emu));
    assertAllInTime(h.emu, results);
    // With every attestor hanging, the task context's labels still assign the identity.
    const after = await ask(h.emu);
    assert.equal(after.outcome, "issued", JSON.stringify(after).slice(0, 300));
  } finally {
    await h.close();
  }
});

Deno.test("1,000 queued csr_sign, main thread blocked 2 s, 4 busy loops: refused in time", async () => {
  const h = await inProcess([{ name: "quick" }]);
  try {
    const results = await withContention(async () => {
      const all = burst(h.emu);
      // Let the emulator write the burst, then block this (the main) thread: only the kernel
      // worker can answer. The emulator's reader thread keeps timing the answers meanwhile.
      await new Promise((r) => setTimeout(r, 50));
      const until = performance.now() + 2000;
      while (performance.now() < until) { /* blocked */ }
      return await all;
    });
    assertAllInTime(h.emu, results);
  } finally {
    await h.close();
  }
});
