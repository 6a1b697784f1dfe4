/**
 * The merge of every source's accepted items into one compiled set (pure but for hostname
 * lookups): items from all sources are compiled together, so order and ids follow the compiler's
 * rules (specificity, then file label, then item) whatever source they came from. Conflicts are
 * reported: a second OPA issuance policy is a problem, one service address described by two
 * sources a warning (their labels are merged, as within one source).
 *
 * @module
 */
import type { KernelPayloads } from "../../driver/payloads.ts";
import type { Problem } from "../errors.ts";
import type { IssuanceHook } from "../opa/issuance_hook.ts";
import { compilePayloads } from "../policy/payloads.ts";
import type { Resolutions } from "../policy/services.ts";
import { serviceHostnames } from "../policy/services.ts";
import type { PolicyProvenance, PolicySource, ServiceSource } from "../policy/source.ts";
import { type LabelTarget, type ParsedDelivery, relocate } from "./parse_delivery.ts";
import type { SourceSpec } from "./spec.ts";

/** An OPA issuance policy loaded from a delivery. */
export interface LoadedIssuance {
  hook: IssuanceHook;
  /** Path of the wasm module in its source. */
  path: string;
  entrypoint: string;
  /** Digest of module and data, to reuse a loaded hook. */
  digest: string;
}

/** A source's delivery that is (or is about to be) in force. */
export interface AcceptedSource {
  spec: SourceSpec;
  parsed: ParsedDelivery;
  issuance?: LoadedIssuance;
}

/** Where a compiled policy came from, with its source (absent for the implicit one). */
export interface SourcedProvenance extends PolicyProvenance {
  source?: string;
}

/** The issuance policy in force and where it came from. */
export interface IssuanceInForce extends LoadedIssuance {
  source: string;
  revision: string;
}

/** A compiled set. `payloads` must not be used when `problems` is non-empty. */
export interface CompiledSet {
  payloads: KernelPayloads;
  provenance: Record<string, SourcedProvenance>;
  problems: Problem[];
  warnings: Problem[];
  policies: PolicySource[];
  services: ServiceSource[];
  resolutions: Resolutions;
  /** File labels read, in order. */
  files: { policies: string[]; services: string[] };
  issuance?: IssuanceInForce;
}

function conflicts(accepted: readonly AcceptedSource[]) {
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const withOpa = accepted.filter((a) => a.issuance);
  for (const later of withOpa.slice(1)) {
    problems.push({
      ...(later.spec.implicit ? {} : { source: later.spec.id }),
      file: later.issuance!.path,
      message: `${withOpa[0]!.spec.id} already delivers the OPA issuance policy; ` +
        "only one source may deliver one",
    });
  }
  const owners = new Map<string, Set<string>>();
  for (const a of accepted) {
    for (const s of a.parsed.services) {
      for (const addr of s.service.addresses) {
        const key = `${addr.address.toLowerCase()}:${addr.port}`;
        owners.set(key, (owners.get(key) ?? new Set()).add(a.spec.id));
      }
    }
  }
  for (const [key, ids] of owners) {
    if (ids.size > 1) {
      warnings.push({
        source: [...ids].join(", "),
        message:
          `service address ${key} is described by ${ids.size} sources; their labels are merged`,
      });
    }
  }
  return { problems, warnings };
}

/**
 * Compiles `accepted` (in declaration order). `resolve` looks hostnames up (the caller caches);
 * `labels` maps file labels back to sources for messages.
 */
export async function compileSet(
  accepted: readonly AcceptedSource[],
  trustDomain: string,
  resolve: (names: string[]) => Promise<Resolutions>,
  labels: ReadonlyMap<string, LabelTarget>,
): Promise<CompiledSet> {
  const policies = accepted.flatMap((a) => a.parsed.policies);
  const services = accepted.flatMap((a) => a.parsed.services);
  const resolutions = await resolve(serviceHostnames(services));
  const compiled = compilePayloads({ trustDomain, policies, services, resolutions });
  const c = conflicts(accepted);
  const provenance: Record<string, SourcedProvenance> = Object.create(null);
  for (const [id, p] of Object.entries(compiled.provenance)) {
    const target = labels.get(p.file);
    provenance[id] = target && target.source !== ""
      ? { ...p, source: target.source, file: target.file }
      : p;
  }
  const out: CompiledSet = {
    payloads: compiled.payloads,
    provenance,
    problems: [...compiled.problems.map((p) => relocate(p, labels)), ...c.problems],
    warnings: [
      ...accepted.flatMap((a) => a.parsed.warnings),
      ...compiled.warnings.map((p) => relocate(p, labels)),
      ...c.warnings,
    ],
    policies,
    services,
    resolutions,
    files: {
      policies: accepted.flatMap((a) => a.parsed.files.policies),
      services: accepted.flatMap((a) => a.parsed.files.services),
    },
  };
  const owner = accepted.find((a) => a.issuance);
  if (owner) {
    out.issuance = {
      ...owner.issuance!,
      source: owner.spec.id,
      revision: owner.parsed.revision,
    };
  }
  return out;
}
