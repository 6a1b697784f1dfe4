/**
 * Config → kernel payloads: reads the policy and service paths of a loaded configuration,
 * validates and compiles them (all or nothing). Shared by `run`, `validate` and `explain`.
 *
 * @module
 */
import type { LoadedConfig } from "../config/load.ts";
import type { KernelPayloads } from "../../driver/payloads.ts";
import type { Problem } from "../errors.ts";
import { loadPolicySet } from "../policy/load.ts";
import type { HostResolver } from "../policy/resolve.ts";
import type { Resolutions } from "../policy/services.ts";
import type { PolicyProvenance, PolicySource, ServiceSource } from "../policy/source.ts";

export type { PolicyProvenance } from "../policy/source.ts";

/** Compiled payloads plus where each policy came from. */
export interface LoadedPayloads {
  payloads: KernelPayloads;
  /** By compiled policy id and egress id. */
  provenance: Record<string, PolicyProvenance>;
  /** Non-fatal findings (e.g. a default policies directory that does not exist). */
  warnings: Problem[];
  /** Validated sources, for recompiling (`compilePayloads`) without reading files again. */
  sources: { policies: PolicySource[]; services: ServiceSource[] };
  /** Hostname resolutions used for the service table; re-resolve with `resolveHostnames`. */
  resolutions: Resolutions;
  /** Files read, in order. */
  files: { policies: string[]; services: string[] };
}

/** Options for {@linkcode loadPayloads}. */
export interface LoadPayloadsOptions {
  /** Hostname lookup (default: /etc/hosts, then DNS). */
  resolver?: HostResolver;
}

/**
 * Loads, validates and compiles policies and services; throws ValidationError with every problem.
 * A path set explicitly (config file, env or flag) must exist; the default paths may be missing
 * (a warning).
 */
export async function loadPayloads(
  loaded: LoadedConfig,
  options: LoadPayloadsOptions = {},
): Promise<LoadedPayloads> {
  const agent = loaded.config.agent;
  const set = await loadPolicySet({
    policiesPaths: agent.policiesPath,
    servicesPaths: agent.servicesPath,
    policiesExplicit: loaded.origins["agent.policiesPath"] !== undefined,
    servicesExplicit: loaded.origins["agent.servicesPath"] !== undefined,
    trustDomain: agent.trustDomain,
    ...(options.resolver ? { resolver: options.resolver } : {}),
  });
  return {
    payloads: set.payloads,
    provenance: set.provenance,
    warnings: set.warnings,
    sources: { policies: set.policies, services: set.services },
    resolutions: set.resolutions,
    files: set.files,
  };
}
