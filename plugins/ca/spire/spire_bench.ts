/**
 * Leaf issuance latency of the `spire` downstream CA (signs in process) against the local
 * `self-signed` CA, in one run, on a real SPIRE deployment. p50 and p99 of every timed call are
 * printed when the run ends.
 *
 *   deno bench -A plugins/ca/spire/spire_bench.ts
 */
import { systemClock } from "../../types.ts";
import { parseCsr } from "../../sdk/csr.ts";
import { pki } from "../../../tests/fakes/identity_capture.ts";
import type { CertificateAuthority, SignRequest } from "../types.ts";
import { SelfSignedCa } from "../self_signed/self_signed_ca.ts";
import { parseSelfSignedConfig } from "../self_signed/config.ts";
import { SpireCa } from "./spire_ca.ts";
import { spireConfig, startSpireForAgent, TD, testLog } from "./_test_spire.ts";

const request: SignRequest = {
  csr: new Uint8Array(parseCsr(await pki("csr-web.pem")).rawData),
  spiffeId: `spiffe://${TD}/web`,
  dnsNames: [],
  ttlMs: 3_600_000,
};
const signal = new AbortController().signal;
const dir = await Deno.makeTempDir({ prefix: "camblet-bench-" });
const local = parseSelfSignedConfig({ caPemPath: `${dir}/ca.pem`, watch: false });
if (!local.ok) throw new Error("bad self-signed config");
const { spire } = await startSpireForAgent();
const cas: Record<string, CertificateAuthority> = {
  "self-signed (local CA)": await SelfSignedCa.open(local.value, {
    clock: systemClock,
    log: testLog,
    maintenanceIntervalMs: 0,
  }),
  "spire downstream CA": await SpireCa.open(spireConfig(spire), {
    clock: systemClock,
    log: testLog,
    trustDomain: TD,
    timer: false,
  }),
};
const samples: Record<string, number[]> = {};

for (const [name, ca] of Object.entries(cas)) {
  samples[name] = [];
  Deno.bench({
    name,
    group: "leaf issuance",
    baseline: name.startsWith("self-signed"),
    async fn() {
      const t = performance.now();
      await ca.sign(request, signal);
      samples[name]!.push(performance.now() - t);
    },
  });
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

globalThis.addEventListener("unload", () => {
  for (const [name, xs] of Object.entries(samples)) {
    xs.sort((a, b) => a - b);
    if (xs.length === 0) continue;
    console.log(
      `${name}: n=${xs.length} p50=${pct(xs, 0.5).toFixed(2)}ms p99=${pct(xs, 0.99).toFixed(2)}ms`,
    );
  }
  for (const ca of Object.values(cas)) void ca.dispose?.();
  for (const pid of [spire.agentPid, spire.serverPid]) {
    try {
      Deno.kill(pid, "SIGTERM");
    } catch { /* gone */ }
  }
  Deno.removeSync(dir, { recursive: true });
  Deno.removeSync(spire.dir, { recursive: true });
});
