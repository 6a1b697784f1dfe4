/**
 * Sources → all three kernel payloads at once (pure). The daemon calls this again with fresh
 * {@linkcode Resolutions} to re-resolve service hostnames without re-reading files.
 *
 * @module
 */
import type { KernelPayloads } from "../../driver/payloads.ts";
import type { Problem } from "../errors.ts";
import { compilePolicies } from "./compile.ts";
import { kernelPayloadProblems } from "./limits.ts";
import { compileServices, type Resolutions } from "./services.ts";
import type { PolicyProvenance, PolicySource, ServiceSource } from "./source.ts";

/** Input of {@linkcode compilePayloads}. */
export interface PayloadSources {
  trustDomain: string;
  policies: readonly PolicySource[];
  services: readonly ServiceSource[];
  resolutions: Resolutions;
}

/** Output of {@linkcode compilePayloads}; `payloads` must not be sent when `problems` is non-empty. */
export interface CompiledPayloads {
  payloads: KernelPayloads;
  /** By policy id and egress id. */
  provenance: Record<string, PolicyProvenance>;
  problems: Problem[];
  warnings: Problem[];
}

/**
 * Compiles policies and services and checks the result against the kernel's limits.
 *
 * @example
 * ```ts
 * import { compilePayloads } from "./payloads.ts";
 * const { payloads } = compilePayloads({
 *   trustDomain: "acme.corp",
 *   policies: [],
 *   services: [],
 *   resolutions: { addresses: new Map() },
 * });
 * payloads.load_config; // { trust_domain: "acme.corp" }
 * ```
 */
export function compilePayloads(sources: PayloadSources): CompiledPayloads {
  const policies = compilePolicies(sources.policies);
  const services = compileServices(sources.services, sources.resolutions);
  const payloads: KernelPayloads = {
    load_config: { trust_domain: sources.trustDomain },
    load_sd_info: services.payload,
    load_policies: policies.payload,
  };
  const problems = [...services.problems];
  if (!problems.length) problems.push(...kernelPayloadProblems(payloads));
  return { payloads, provenance: policies.provenance, problems, warnings: policies.warnings };
}
