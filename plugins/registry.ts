/**
 * The static registry of built-in plugins. Every built-in is imported here explicitly, so that
 * `deno compile` embeds it; the loader finds plugins by kind and name in this list.
 *
 * @module
 */
import type { Attestor, PluginDefinition, PluginInstance, PluginKind } from "./types.ts";
import type { CertificateAuthority } from "./ca/types.ts";
import { selfSignedCaPlugin } from "./ca/self_signed/plugin.ts";
import { vaultCaPlugin } from "./ca/vault/plugin.ts";
import { spireCaPlugin } from "./ca/spire/plugin.ts";
import { processAttestor } from "./attestor/process/process.ts";
import { linuxOsAttestor } from "./attestor/linuxos/linuxos.ts";
import { sysfsDmiAttestor } from "./attestor/sysfsdmi/sysfsdmi.ts";
import { dockerAttestor } from "./attestor/docker/docker.ts";
import { containerdAttestor } from "./attestor/containerd/containerd.ts";
import { kubernetesAttestor } from "./attestor/kubernetes/kubernetes.ts";
import { systemdAttestor } from "./attestor/systemd/systemd.ts";
import { azureAttestor } from "./attestor/cloud/azure.ts";
import { ec2Attestor } from "./attestor/cloud/ec2.ts";
import { gcpAttestor } from "./attestor/cloud/gcp.ts";
import { filePolicySource } from "./policy_source/file/file_source.ts";
import { gitPolicySource } from "./policy_source/git/git_source.ts";
import { httpPolicySource } from "./policy_source/http/http_source.ts";
import type { PolicySourceInstance } from "./policy_source/types.ts";

/** What an instance of each kind implements. */
export interface KindInstances {
  ca: CertificateAuthority;
  attestor: Attestor;
  policySource: PolicySourceInstance;
}

/** A definition of any kind and config type (the registry's element type). */
// deno-lint-ignore no-explicit-any
export type AnyPluginDefinition = PluginDefinition<PluginKind, any, PluginInstance>;

/** Built-in plugins, by kind. */
export const BUILTIN_PLUGINS: readonly AnyPluginDefinition[] = [
  selfSignedCaPlugin,
  vaultCaPlugin,
  spireCaPlugin,
  processAttestor,
  linuxOsAttestor,
  sysfsDmiAttestor,
  dockerAttestor,
  containerdAttestor,
  kubernetesAttestor,
  systemdAttestor,
  azureAttestor,
  ec2Attestor,
  gcpAttestor,
  filePolicySource,
  gitPolicySource,
  httpPolicySource,
];

/**
 * The built-in `kind` plugin called `name`, if any.
 *
 * @example
 * ```ts
 * import { findPlugin } from "./registry.ts";
 * findPlugin("ca", "self-signed")?.description;
 * ```
 */
export function findPlugin(
  kind: PluginKind,
  name: string,
  registry: readonly AnyPluginDefinition[] = BUILTIN_PLUGINS,
): AnyPluginDefinition | undefined {
  return registry.find((d) => d.kind === kind && d.name === name);
}

/** Names of the `kind` plugins in `registry`, sorted. */
export function pluginNames(
  kind: PluginKind,
  registry: readonly AnyPluginDefinition[] = BUILTIN_PLUGINS,
): string[] {
  return registry.filter((d) => d.kind === kind).map((d) => d.name).sort();
}
