/**
 * Policy files → validated, normalised {@linkcode PolicySource}s (pure: text in, data out).
 *
 * @module
 */
import type { KernelCertificate, KernelConnection } from "../../driver/payloads.ts";
import { formatKernelTtl, parseDuration } from "../duration.ts";
import type { Problem } from "../errors.ts";
import { formatPath } from "../problems.ts";
import { parseItems } from "./parse.ts";
import { type EgressDocument, type PolicyDocument, policySchema } from "./schema.ts";
import type { EgressInput, PolicySource, SelectorEntries } from "./source.ts";
import type { YamlSource } from "./yaml_source.ts";
import { checkSelectorValue } from "./selector_types.ts";

/** Most selector sets one selector map may expand to (product of its list lengths). */
export const MAX_SELECTOR_PRODUCT = 4096;

/** Options for {@linkcode parsePolicyFile}. */
export interface ParsePolicyOptions {
  /** Value of `{{.TrustDomain}}`. */
  trustDomain: string;
}

type Selectors = PolicyDocument["selectors"];

function normaliseSelectors(
  selectors: Selectors,
  path: readonly PropertyKey[],
  source: YamlSource | undefined,
  problems: Problem[],
  at: (field: readonly PropertyKey[]) => Omit<Problem, "message">,
  typed: boolean,
): SelectorEntries[] {
  return selectors.map((map, m) => {
    let product = 1;
    const entries: SelectorEntries = Object.entries(map).map(([name, value]) => {
      const list = Array.isArray(value) ? value : [value];
      const values = list.map((v, i) => {
        const field = Array.isArray(value) ? [m, name, i] : [m, name];
        const written = typeof v === "string"
          ? v
          : source?.literalOf([...path, ...field]) ?? String(v);
        if (!typed) return written;
        const checked = checkSelectorValue(name, written);
        if ("value" in checked) return checked.value;
        problems.push({ ...at(field), message: `${checked.problem}; it can never match` });
        return written;
      });
      const unique = [...new Set(values)];
      product *= unique.length;
      return [name, unique];
    });
    if (product > MAX_SELECTOR_PRODUCT) {
      problems.push({
        ...at([m]),
        message: `selector map expands to ${product} combinations (more than ` +
          `${MAX_SELECTOR_PRODUCT}); split the policy or use fewer values`,
      });
    }
    return entries;
  });
}

function certificate(doc: PolicyDocument["certificate"]): KernelCertificate {
  const out: KernelCertificate = { workloadID: doc.workloadID };
  if (doc.dnsNames?.length) out.dnsNames = [...doc.dnsNames];
  if (doc.ttl !== undefined) out.ttl = formatKernelTtl(parseDuration(doc.ttl));
  return out;
}

/** The connection block with zero values dropped, as protojson writes it. */
function connection(doc: PolicyDocument["connection"]): KernelConnection | undefined {
  if (!doc) return undefined;
  const out: KernelConnection = {};
  if (doc.mtls === "STRICT" || doc.mtls === "DISABLE") out.mtls = doc.mtls;
  if (doc.passthrough) out.passthrough = true;
  if (doc.allowedSPIFFEIDs?.length) out.allowedSPIFFEIDs = [...doc.allowedSPIFFEIDs];
  if (doc.http) out.http = true;
  return Object.keys(out).length ? out : undefined;
}

function entry(
  doc: EgressDocument,
  path: readonly PropertyKey[],
  source: YamlSource | undefined,
  problems: Problem[],
  at: (field: readonly PropertyKey[]) => Omit<Problem, "message">,
  typed: boolean,
): EgressInput {
  const out: EgressInput = {
    selectors: normaliseSelectors(
      doc.selectors,
      [...path, "selectors"],
      source,
      problems,
      (f) => at(["selectors", ...f]),
      typed,
    ),
    certificate: certificate(doc.certificate),
  };
  const conn = connection(doc.connection);
  if (conn) out.connection = conn;
  return out;
}

/**
 * Parses one policy file. Returns every problem found; `policies` must be ignored when there are
 * any (all-or-nothing loading is the caller's job).
 *
 * @example
 * ```ts
 * import { parsePolicyFile } from "./parse_policy.ts";
 * const { policies } = parsePolicyFile(
 *   "web.yaml",
 *   "- selectors: [{process:name: nginx}]\n  certificate: {workloadID: web, ttl: 1h}\n",
 *   { trustDomain: "acme.corp" },
 * );
 * policies[0]?.policy.certificate.ttl; // "3600s"
 * ```
 */
export function parsePolicyFile(
  file: string,
  text: string,
  options: ParsePolicyOptions,
): { policies: PolicySource[]; problems: Problem[] } {
  const parsed = parseItems(file, text, policySchema, {
    noun: "policy",
    template: { TrustDomain: options.trustDomain },
  });
  const problems = [...parsed.problems];
  const policies: PolicySource[] = [];
  for (const { item, line, data } of parsed.items) {
    const at = (field: readonly PropertyKey[]) => {
      const l = parsed.source?.lineOf([item, ...field]);
      return { file, item, ...(l === undefined ? {} : { line: l }), field: formatPath(field) };
    };
    // Policy selectors match the kernel's labels (typed); egress selectors match service labels.
    const policy: PolicySource["policy"] = entry(data, [item], parsed.source, problems, at, true);
    if (data.runtime) policy.runtime = data.runtime;
    if (data.egress?.length) {
      policy.egress = data.egress.map((e, i) => {
        const out = entry(
          e,
          [item, "egress", i],
          parsed.source,
          problems,
          (f) => at(["egress", i, ...f]),
          false,
        );
        const l = parsed.source?.lineOf([item, "egress", i]);
        return l === undefined ? out : { line: l, ...out };
      });
    }
    policies.push(line === undefined ? { file, item, policy } : { file, item, line, policy });
  }
  return { policies, problems };
}
