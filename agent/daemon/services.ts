/**
 * The daemon's request handlers, built from the configuration: the CA plugin behind the identity
 * manager for `csr_sign`, the attestation collectors for `augment`. They run on the main thread
 * (they may do network I/O); the kernel worker answers for them when they are late.
 *
 * @module
 */
import type { CsrSignData } from "../../driver/codec.ts";
import type { KernelPayloads, TaskContext } from "../../driver/payloads.ts";
import { loadPlugins } from "../../plugins/loader.ts";
import { caSelection } from "../identity/ca_selection.ts";
import type { CertificateAuthority } from "../../plugins/ca/types.ts";
import { systemClock } from "../../plugins/types.ts";
import { useAttestation } from "../attestation/augment.ts";
import { createAttestation } from "../attestation/builtin.ts";
import type { Config } from "../config/schema.ts";
import { parseDuration } from "../duration.ts";
import { IdentityManager } from "../identity/manager.ts";
import { WorkloadCertificates } from "../identity/workload_certs.ts";
import { agentMetrics } from "../identity/metrics.ts";
import { logger } from "../log.ts";
import type { WorkloadIdentities } from "./proxy_plane.ts";
import type { IssuanceHook } from "../opa/issuance_hook.ts";
import { PluginHealth, type PluginHealthEntry } from "./plugin_health.ts";

/** What the daemon needs from the rest of the agent. */
export interface AgentServices {
  /** `augment`: labels for the process (partial rather than late). */
  augment(task: TaskContext, signal: AbortSignal): Promise<string[]>;
  /** `csr_sign`: the kernel answer (a refusal certificate when refused); never rejects. */
  csrSign(task: TaskContext, data: CsrSignData, id?: string): Promise<string>;
  /** The CA's current trust anchors (DER), for the kernel worker's refusal certificates. */
  trustAnchors(): Promise<Uint8Array[]>;
  /** Proxy data plane only: the agent's own workload keys and certificates. */
  identities?: WorkloadIdentities;
  /** `kind/name` → 1 when the last health check said up, 0 when down. */
  plugins(): Record<string, number>;
  /** `kind/name` → the last health check's answer. */
  pluginHealth(): Record<string, PluginHealthEntry>;
  dispose(): Promise<void>;
}

/**
 * Creates the CA plugin, the attestation collectors and the identity manager. Throws (with the
 * plugin named) when one cannot start, after disposing what started.
 */
export async function createServices(
  config: Config,
  payloads: () => KernelPayloads,
  signal: AbortSignal,
  issuanceHook?: () => IssuanceHook | undefined,
  dataPlane: "kernel" | "proxy" = "kernel",
): Promise<AgentServices> {
  const trustDomain = config.agent.trustDomain;
  const plugins = await loadPlugins([caSelection(config)], {
    enforce: ["ca"],
    context: (kind, name) => ({
      log: logger("plugin", kind, name),
      clock: systemClock,
      trustDomain,
      signal,
      metrics: agentMetrics,
    }),
  });
  const ca = plugins.of("ca")[0] as CertificateAuthority;
  let attestation;
  try {
    attestation = await createAttestation(config, { signal });
  } catch (e) {
    await plugins.dispose();
    throw e;
  }
  attestation.start();
  const labelsFor = (task: TaskContext, s: AbortSignal) => attestation.augmentLabels(task, s);
  let identity: IdentityManager;
  try {
    identity = await IdentityManager.create({
      ca,
      trustDomain,
      payloads,
      ...(issuanceHook ? { issuanceHook } : {}),
      labelsFor,
      defaultCertTtlMs: parseDuration(config.agent.defaultCertTTL),
      // Refusal certificates and RSA anchors are what camblet-driver needs; the proxy does not.
      kernelDriver: dataPlane === "kernel",
    });
  } catch (e) {
    await attestation.dispose();
    await plugins.dispose();
    throw e;
  }
  // `augmentLabels()` users see the daemon's collectors.
  useAttestation(attestation);
  // Proxy mode: the agent terminates TLS itself, so it holds a key per workload identity.
  const identities = dataPlane === "proxy"
    ? new WorkloadCertificates({ identity, keyType: config.agent.proxy.keyType })
    : undefined;
  // Asked now and every 15 s: what `camblet_plugin_up` and `status` report.
  const health = new PluginHealth([
    ...plugins.all,
    ...attestation.attestors.map((a) => ({ kind: "attestor" as const, name: a.name, instance: a })),
  ]);
  health.start();
  return {
    augment: labelsFor,
    csrSign: (task, data, id) =>
      identity.signForKernel({
        task,
        data: data as unknown as Record<string, unknown>,
        ...(id ? { id } : {}),
      }),
    trustAnchors: () => ca.trustBundle(),
    ...(identities ? { identities } : {}),
    plugins: () => health.up(),
    pluginHealth: () => health.status(),
    dispose: async () => {
      await health.dispose();
      await identities?.dispose();
      useAttestation(undefined);
      await attestation.dispose();
      await plugins.dispose();
    },
  };
}
