/**
 * Proxy workload certificates with the self-signed CA (RSA-2048 root):
 * `deno bench -A agent/identity/workload_certs_bench.ts`. A cold `prepare` is key generation, CSR,
 * the identity manager's checks and the CA signature; `certificateFor` on a cached identity is
 * what the proxy pays per connection.
 */
import { WorkloadCertificates, type WorkloadKeyType } from "./workload_certs.ts";
import { IdentityManager } from "./manager.ts";
import { AuditLog } from "./audit.ts";
import { MetricsRegistry } from "../../plugins/sdk/metrics.ts";
import { compilePayloads } from "../policy/payloads.ts";
import { parsePolicyFile } from "../policy/parse_policy.ts";
import { benchSelfSignedCa } from "../../tests/fakes/bench_ca.ts";
import type { TaskContext } from "../../driver/payloads.ts";

const TD = "acme.test";
const WEB = `spiffe://${TD}/web`;
const ca = await benchSelfSignedCa("workload-certs-bench-");
const policies = parsePolicyFile(
  "policies.yaml",
  "- selectors: [{ process:name: web }]\n  certificate: { workloadID: web, ttl: 1h }\n",
  { trustDomain: TD },
).policies;
const { payloads } = compilePayloads({
  trustDomain: TD,
  policies,
  services: [],
  resolutions: { addresses: new Map() },
});
const metrics = new MetricsRegistry();
const manager = await IdentityManager.create({
  ca,
  trustDomain: TD,
  payloads: () => payloads,
  labelsFor: () => Promise.resolve([]),
  defaultCertTtlMs: 86_400_000,
  audit: new AuditLog({ capacity: 10 }),
  metrics,
});
const web = {
  task: {
    uid: 1000,
    gid: 1000,
    pid: 4242,
    command_path: "/usr/bin/web",
    command_name: "web",
    cgroup_path: "/",
    namespace_ids: {} as TaskContext["namespace_ids"],
  },
  labels: ["process:name=web"],
};

const warm = new WorkloadCertificates({ identity: manager, metrics });
await warm.prepare(WEB, web);
globalThis.addEventListener("unload", () => void warm.dispose());

Deno.bench("certificateFor: cached identity", { baseline: true }, () => {
  warm.certificateFor(WEB);
});

for (const keyType of ["rsa", "ecdsa"] as WorkloadKeyType[]) {
  Deno.bench(`prepare: cold (${keyType}: key + CSR + checks + self-signed CA)`, async (b) => {
    const certs = new WorkloadCertificates({ identity: manager, metrics, keyType });
    b.start();
    await certs.prepare(WEB, web);
    b.end();
    await certs.dispose();
  });
}
