/**
 * Leaf issuance latency: the local `self-signed` CA (baseline) against the `vault` CA in
 * `intermediate` mode (signs in process; target: within 20 % of the baseline) and in `leaf` mode
 * (a round trip to a real Vault on loopback per CSR), all in one run. Besides Deno's table, p50
 * and p99 of every timed call are printed when the run ends.
 *
 *   deno bench -A plugins/ca/vault/vault_bench.ts
 */
import { systemClock } from "../../types.ts";
import { parseCsr } from "../../sdk/csr.ts";
import { pki } from "../../../tests/fakes/identity_capture.ts";
import type { CertificateAuthority, SignRequest } from "../types.ts";
import { SelfSignedCa } from "../self_signed/self_signed_ca.ts";
import { parseSelfSignedConfig } from "../self_signed/config.ts";
import { startPkiVault, testLog, vaultConfig } from "./_test_vault.ts";
import { VaultIntermediateCa } from "./intermediate_ca.ts";
import { VaultLeafCa } from "./leaf_ca.ts";

const request: SignRequest = {
  csr: new Uint8Array(parseCsr(await pki("csr-web.pem")).rawData),
  spiffeId: "spiffe://acme.test/web",
  dnsNames: [],
  ttlMs: 3_600_000,
};
const signal = new AbortController().signal;
const dir = await Deno.makeTempDir({ prefix: "camblet-bench-" });
const local = parseSelfSignedConfig({ caPemPath: `${dir}/ca.pem`, watch: false });
if (!local.ok) throw new Error("bad self-signed config");
const { vault } = await startPkiVault();
const opts = { clock: systemClock, log: testLog, timer: false };
const cas: Record<string, CertificateAuthority> = {
  "self-signed (local CA)": await SelfSignedCa.open(local.value, {
    ...opts,
    maintenanceIntervalMs: 0,
  }),
  "vault intermediate": await VaultIntermediateCa.open(vaultConfig(vault), opts),
  "vault leaf": await VaultLeafCa.open(
    vaultConfig(vault, { mode: "leaf", leaf: { role: "camblet" } }),
    opts,
  ),
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
  try {
    Deno.kill(vault.pid, "SIGKILL");
  } catch { /* gone */ }
  Deno.removeSync(dir, { recursive: true });
  Deno.removeSync(vault.logPath.slice(0, vault.logPath.lastIndexOf("/")), { recursive: true });
});
