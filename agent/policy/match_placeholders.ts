/**
 * `[name]` placeholders in `certificate.workloadID`, substituted as the kernel's socket.rego does:
 * `[name]` becomes the value of label `name=value` when exactly one value exists for `name`;
 * for egress entries the destination service's labels override (object.union(local, remote)).
 *
 * Kernel details kept: a label is split at its first `=`; a label without `=` has the value `""`;
 * a label whose value equals its name (`x=x`) is ignored. The kernel substitutes every known
 * placeholder in turn (strings.replace_n, in hash order); we go in sorted order, so only a label
 * value that itself contains a placeholder could differ (reported in `orderDependent`).
 *
 * @module
 */

/** Label values by label name. */
export type LabelIndex = Map<string, Set<string>>;

/** Groups `name=value` label keys by name, with the kernel's quirks. */
export function indexLabels(labels: Iterable<string>): LabelIndex {
  const out: LabelIndex = new Map();
  for (const key of labels) {
    const i = key.indexOf("=");
    const name = i < 0 ? key : key.slice(0, i);
    const value = i < 0 ? "" : key.slice(i + 1);
    if (name === value) continue;
    let values = out.get(name);
    if (!values) out.set(name, values = new Set());
    values.add(value);
  }
  return out;
}

/** How one placeholder fared. */
export interface PlaceholderReport {
  /** As written, e.g. `[process:uid]`. */
  placeholder: string;
  name: string;
  /** The substituted value, when resolved. */
  value?: string;
  /** Where the value came from: the process/connection labels or the destination service's. */
  from?: "labels" | "remote";
  /** Why it stayed: no such label, or several values. */
  problem?: "missing" | "ambiguous";
  /** All values seen for the name (for `ambiguous`). */
  values?: string[];
}

/** The result of substituting a workloadID. */
export interface Substitution {
  workloadID: string;
  placeholders: PlaceholderReport[];
  /** Placeholders left in the result, e.g. `["[k8s:pod:name]"]`. */
  unresolved: string[];
  /** A substituted value contains a placeholder: the kernel's result depends on its hash order. */
  orderDependent: boolean;
}

const PLACEHOLDER = /\[([^[\]]*)\]/g;

function single(index: LabelIndex, name: string): string | undefined {
  const v = index.get(name);
  return v && v.size === 1 ? v.values().next().value : undefined;
}

/**
 * Substitutes `[name]` placeholders. `remote` (egress only) wins over `local` for names it has
 * exactly one value for.
 *
 * @example
 * ```ts
 * import { indexLabels, substituteWorkloadId } from "./match_placeholders.ts";
 * substituteWorkloadId("team/[process:uid]", indexLabels(["process:uid=501"])).workloadID;
 * // "team/501"
 * ```
 */
export function substituteWorkloadId(
  template: string,
  local: LabelIndex,
  remote?: LabelIndex,
): Substitution {
  if (!template.includes("[")) {
    return { workloadID: template, placeholders: [], unresolved: [], orderDependent: false };
  }
  const replacements = new Map<string, { value: string; from: "labels" | "remote" }>();
  const placeholders: PlaceholderReport[] = [];
  const seen = new Set<string>();
  for (const m of template.matchAll(PLACEHOLDER)) {
    const name = m[1]!;
    if (seen.has(name)) continue;
    seen.add(name);
    const fromRemote = remote ? single(remote, name) : undefined;
    const fromLocal = single(local, name);
    const report: PlaceholderReport = { placeholder: m[0], name };
    if (fromRemote !== undefined) {
      replacements.set(m[0], { value: fromRemote, from: "remote" });
      Object.assign(report, { value: fromRemote, from: "remote" });
    } else if (fromLocal !== undefined) {
      replacements.set(m[0], { value: fromLocal, from: "labels" });
      Object.assign(report, { value: fromLocal, from: "labels" });
    } else {
      const values = [...(local.get(name) ?? []), ...(remote?.get(name) ?? [])];
      report.problem = values.length === 0 ? "missing" : "ambiguous";
      if (values.length) report.values = [...new Set(values)].sort();
    }
    placeholders.push(report);
  }
  let workloadID = template;
  let orderDependent = false;
  for (const key of [...replacements.keys()].sort()) {
    const { value } = replacements.get(key)!;
    if (value.includes("[") && value.includes("]")) orderDependent = true;
    workloadID = workloadID.replaceAll(key, value);
  }
  const unresolved = placeholders.filter((p) => p.problem).map((p) => p.placeholder);
  return { workloadID, placeholders, unresolved, orderDependent };
}
