/**
 * Issuance latency from the real kernel CSR with an RSA-2048 self-signed root:
 * `deno bench -A agent/identity/manager_bench.ts`. Set `CAMBLET_BENCH_PERCENTILES=1` to also print
 * p50/p99 of 300 sequential issuances (Deno.bench reports avg, p75, p99).
 */
import { IdentityManager } from "./manager.ts";
import { AuditLog } from "./audit.ts";
import { MetricsRegistry } from "../../plugins/sdk/metrics.ts";
import { benchSelfSignedCa } from "../../tests/fakes/bench_ca.ts";
import { parseCsr } from "../../plugins/sdk/csr.ts";
import { captureCsrSign, capturePayloads, taskLabels } from "../../tests/fakes/identity_capture.ts";

const ca = await benchSelfSignedCa("identity-bench-");
const payloads = await capturePayloads();
const request = await captureCsrSign("python3");
const manager = await IdentityManager.create({
  ca,
  trustDomain: "acme.test",
  payloads: () => payloads,
  labelsFor: (task) => Promise.resolve(taskLabels(task)),
  defaultCertTtlMs: 86_400_000,
  audit: new AuditLog({ capacity: 10 }),
  metrics: new MetricsRegistry(),
});
const kernelRequest = { id: request.id, task: request.task_context, data: request.data };
const tampered = { ...kernelRequest, task: (await captureCsrSign("curl")).task_context };
const csrDer = new Uint8Array(parseCsr(JSON.parse(request.data).csr).rawData);
const signal = new AbortController().signal;

Deno.bench("csr_sign: real kernel CSR → answer (identity manager + self-signed RSA-2048)", {
  baseline: true,
}, async () => {
  await manager.signForKernel(kernelRequest);
});

Deno.bench("csr_sign refused (not assignable) → refusal certificate", async () => {
  await manager.signForKernel(tampered);
});

Deno.bench("self-signed CA sign only", async () => {
  await ca.sign(
    { csr: csrDer, spiffeId: "spiffe://acme.test/web", dnsNames: [], ttlMs: 3_600_000 },
    signal,
  );
});

if (Deno.env.get("CAMBLET_BENCH_PERCENTILES")) {
  for (const [name, req] of [["issued", kernelRequest], ["refused", tampered]] as const) {
    const ms: number[] = [];
    for (let i = 0; i < 300; i++) {
      const t = performance.now();
      await manager.signForKernel(req);
      ms.push(performance.now() - t);
    }
    ms.sort((a, b) => a - b);
    const p = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!.toFixed(2);
    console.log(
      `${name}: p50 ${p(0.5)} ms, p99 ${p(0.99)} ms, max ${ms.at(-1)!.toFixed(2)} ms (n=300)`,
    );
  }
}
