/**
 * Loads policies and services from files into kernel payloads, all or nothing: every problem of
 * every file is collected, and any problem means nothing is returned.
 *
 * @module
 */
import { type Problem, ValidationError } from "../errors.ts";
import { readSourceFiles } from "./files.ts";
import { parsePolicyFile } from "./parse_policy.ts";
import { parseServiceFile } from "./parse_service.ts";
import { type CompiledPayloads, compilePayloads } from "./payloads.ts";
import { type HostResolver, resolveHostnames, systemResolver } from "./resolve.ts";
import { type Resolutions, serviceHostnames } from "./services.ts";
import type { PolicySource, ServiceSource } from "./source.ts";

/** Options for {@linkcode loadPolicySet}. */
export interface LoadPolicySetOptions {
  policiesPaths: readonly string[];
  servicesPaths: readonly string[];
  /** Whether the user set the paths; missing explicit paths are errors, missing defaults warnings. */
  policiesExplicit?: boolean;
  servicesExplicit?: boolean;
  trustDomain: string;
  /** Hostname lookup (default: /etc/hosts, then DNS). */
  resolver?: HostResolver;
}

/** A loaded, compiled set, with the sources kept for recompiling (e.g. after re-resolving). */
export interface PolicySet extends Omit<CompiledPayloads, "problems"> {
  policies: PolicySource[];
  services: ServiceSource[];
  resolutions: Resolutions;
  /** Files read, in order. */
  files: { policies: string[]; services: string[] };
}

/**
 * Reads, validates and compiles. Throws {@linkcode ValidationError} listing every problem (file,
 * item, line, field) when anything is wrong; never returns a partial set.
 */
export async function loadPolicySet(options: LoadPolicySetOptions): Promise<PolicySet> {
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const [policyFiles, serviceFiles] = await Promise.all([
    readSourceFiles(options.policiesPaths, {
      what: "policies",
      explicit: options.policiesExplicit ?? true,
    }),
    readSourceFiles(options.servicesPaths, {
      what: "services",
      explicit: options.servicesExplicit ?? true,
    }),
  ]);
  problems.push(...policyFiles.problems, ...serviceFiles.problems);
  warnings.push(...policyFiles.warnings, ...serviceFiles.warnings);

  const policies: PolicySource[] = [];
  for (const f of policyFiles.files) {
    const r = parsePolicyFile(f.path, f.text, { trustDomain: options.trustDomain });
    policies.push(...r.policies);
    problems.push(...r.problems);
  }
  const services: ServiceSource[] = [];
  for (const f of serviceFiles.files) {
    const r = parseServiceFile(f.path, f.text);
    services.push(...r.services);
    problems.push(...r.problems);
  }

  const resolutions = await resolveHostnames(
    serviceHostnames(services),
    options.resolver ?? systemResolver(),
  );
  const compiled = compilePayloads({
    trustDomain: options.trustDomain,
    policies,
    services,
    resolutions,
  });
  problems.push(...compiled.problems);
  if (problems.length) throw new ValidationError("Cannot load policies and services", problems);
  return {
    payloads: compiled.payloads,
    provenance: compiled.provenance,
    warnings: [...warnings, ...compiled.warnings],
    policies,
    services,
    resolutions,
    files: {
      policies: policyFiles.files.map((f) => f.path),
      services: serviceFiles.files.map((f) => f.path),
    },
  };
}
