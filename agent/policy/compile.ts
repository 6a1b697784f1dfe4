/**
 * Policies → the kernel's `load_policies` payload (protocol doc §3.1). Pure and synchronous: no
 * I/O, no clock, no randomness, so the same sources always give the same bytes.
 *
 * @module
 */
import type {
  KernelCertificate,
  KernelConnection,
  KernelEgress,
  KernelPolicy,
  LoadPolicies,
  SelectorSet,
} from "../../driver/payloads.ts";
import type { Problem } from "../errors.ts";
import { contentId } from "./content_id.ts";
import { specificityOrder } from "./order.ts";
import { expandSelectors } from "./selectors.ts";
import {
  compareSources,
  type EgressInput,
  type PolicyProvenance,
  type PolicySource,
} from "./source.ts";

/** Compiled policies and where each id came from. */
export interface CompiledPolicies {
  payload: LoadPolicies;
  /** By policy id and egress id. */
  provenance: Record<string, PolicyProvenance>;
  /** Non-fatal findings (identical policies). */
  warnings: Problem[];
}

/** Content of one compiled entry without position and id, in protojson key order. */
export interface Body {
  selectors: SelectorSet[];
  certificate: KernelCertificate;
  connection?: KernelConnection;
}

function body(input: EgressInput): Body {
  const out: Body = { selectors: expandSelectors(input.selectors), certificate: input.certificate };
  if (input.connection) out.connection = input.connection;
  return out;
}

/**
 * The canonical form an id is hashed from: {@linkcode canonicalJson} of the content (keys sorted
 * at every level), with the selector sets as sorted label lists in sorted order. Built with keys
 * already in order because a generic key sort dominated compile time.
 */
export function canonicalContent(b: Body, egress?: readonly Body[]): Record<string, unknown> {
  const c = b.certificate;
  const certificate: Record<string, unknown> = {};
  if (c.dnsNames !== undefined) certificate["dnsNames"] = c.dnsNames;
  if (c.ttl !== undefined) certificate["ttl"] = c.ttl;
  certificate["workloadID"] = c.workloadID;
  const k = b.connection ?? {};
  const connection: Record<string, unknown> = {};
  if (k.allowedSPIFFEIDs !== undefined) connection["allowedSPIFFEIDs"] = k.allowedSPIFFEIDs;
  if (k.http !== undefined) connection["http"] = k.http;
  if (k.mtls !== undefined) connection["mtls"] = k.mtls;
  if (k.passthrough !== undefined) connection["passthrough"] = k.passthrough;
  const selectors = b.selectors.map((set) => Object.keys(set).sort())
    .sort((x, y) => {
      const a = x.join("\n"), z = y.join("\n");
      return a < z ? -1 : a > z ? 1 : 0;
    });
  const out: Record<string, unknown> = { certificate, connection };
  if (egress) out["egress"] = egress.map((e) => canonicalContent(e));
  out["selectors"] = selectors;
  return out;
}

/**
 * Compiles policies: selector maps expanded to their cartesian product, ids from content, order
 * by specificity then (file, item), positions 0..n-1, egress positions 0..m-1 per policy in
 * written order.
 *
 * @example
 * ```ts
 * import { compilePolicies } from "./compile.ts";
 * const { payload } = compilePolicies([{
 *   file: "web.yaml",
 *   item: 0,
 *   policy: { selectors: [[["process:name", ["nginx"]]]], certificate: { workloadID: "web" } },
 * }]);
 * payload.policies[0]?.selectors; // [{ "process:name=nginx": true }]
 * ```
 */
export function compilePolicies(sources: readonly PolicySource[]): CompiledPolicies {
  const sorted = [...sources].sort(compareSources);
  const compiled = sorted.map((src) => {
    const main = body(src.policy);
    const egress = (src.policy.egress ?? []).map(body);
    const id = contentId("camblet-policy/v1", JSON.stringify(canonicalContent(main, egress)));
    return { src, main, egress, id };
  });
  const order = specificityOrder(compiled.map((c) => c.main.selectors.map((s) => Object.keys(s))));

  const policies: KernelPolicy[] = [];
  const provenance: Record<string, PolicyProvenance> = Object.create(null);
  const warnings: Problem[] = [];
  const where = (c: (typeof compiled)[number]) => {
    const p: PolicyProvenance = { file: c.src.file, item: c.src.item };
    if (c.src.line !== undefined) p.line = c.src.line;
    return p;
  };
  for (const index of order) {
    const c = compiled[index]!;
    const first = provenance[c.id];
    if (first) {
      warnings.push({
        ...where(c),
        message: `policy is identical to ${first.file} item ${first.item}, which takes precedence`,
      });
    } else provenance[c.id] = where(c);
    const policy: KernelPolicy = { position: policies.length, id: c.id, ...c.main };
    if (c.egress.length) {
      policy.egress = c.egress.map((e, i): KernelEgress => {
        const id = contentId(
          "camblet-egress/v1",
          c.id,
          String(i),
          JSON.stringify(canonicalContent(e)),
        );
        const line = c.src.policy.egress?.[i]?.line;
        provenance[id] ??= { ...where(c), ...(line === undefined ? {} : { line }), egress: i };
        return { position: i, id, ...e };
      });
    }
    policies.push(policy);
  }
  return { payload: { policies }, provenance, warnings };
}
