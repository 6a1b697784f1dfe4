/**
 * Audit rules compiled by `opa build -t wasm -e camblet/audit/violations -e camblet/audit/filter`
 * and evaluated in the agent (@open-policy-agent/opa-wasm). `filter` is evaluated once, at load:
 * the union of what every rule declares it can match becomes the in-kernel prefilter.
 *
 * @module
 */
import { type LoadedPolicy, loadPolicy } from "@open-policy-agent/opa-wasm";
import { SYSCALLS } from "../../driver/bpf/audit_layout.ts";
import type { AuditFilter } from "../../driver/bpf/audit.ts";
import type { AuditInput } from "./context.ts";

export const VIOLATIONS_ENTRYPOINT = "camblet/audit/violations";
export const FILTER_ENTRYPOINT = "camblet/audit/filter";

/** What a rule reports. */
export interface RuleViolation {
  rule: string;
  severity: string;
  output: string;
}

const SEVERITIES = new Set([
  "emergency",
  "alert",
  "critical",
  "error",
  "warning",
  "notice",
  "informational",
  "debug",
]);

/** Rules that cannot be used, naming where they came from and why. */
export class AuditRulesError extends Error {
  override name = "AuditRulesError";
}

/** The union of the rules' `filter` declarations (see policies/rego/audit/rules.rego). */
export function compileFilter(decls: unknown, source: string): AuditFilter {
  if (!Array.isArray(decls)) {
    throw new AuditRulesError(`Cannot use audit rules from ${source}: filter is not a set`);
  }
  const syscalls = new Set<string>();
  // A syscall is path-filtered only when every rule naming it gives prefixes.
  const unfiltered = new Set<string>();
  const prefixes = new Set<string>();
  decls.forEach((d, i) => {
    const where = `${source}: filter item ${i}`;
    if (typeof d !== "object" || d === null) throw new AuditRulesError(`${where}: not an object`);
    const { rule, syscalls: sc, prefixes: px } = d as Record<string, unknown>;
    const name = typeof rule === "string" ? `rule "${rule}"` : where;
    if (!Array.isArray(sc) || sc.length === 0 || !sc.every((s) => typeof s === "string")) {
      throw new AuditRulesError(`${source}: ${name}: syscalls must be a non-empty list of names`);
    }
    for (const s of sc as string[]) {
      if (!SYSCALLS.has(s)) {
        throw new AuditRulesError(
          `${source}: ${name}: syscall "${s}" is not captured (known: ${
            [...SYSCALLS.keys()].join(", ")
          })`,
        );
      }
      syscalls.add(s);
    }
    if (px === undefined) {
      for (const s of sc as string[]) unfiltered.add(s);
    } else {
      if (!Array.isArray(px) || !px.every((p) => typeof p === "string" && p.startsWith("/"))) {
        throw new AuditRulesError(`${source}: ${name}: prefixes must be absolute paths`);
      }
      for (const p of px as string[]) prefixes.add(p);
    }
  });
  const pathFiltered = [...syscalls].filter((s) =>
    !unfiltered.has(s) && SYSCALLS.get(s)!.path !== undefined
  );
  return {
    syscalls: [...syscalls].sort(),
    pathFiltered: pathFiltered.sort(),
    prefixes: [...prefixes].sort(),
  };
}

/** Loaded rules: judge inputs, and the prefilter they need. */
export class AuditRules {
  readonly source: string;
  readonly filter: AuditFilter;
  #policy: LoadedPolicy;

  private constructor(source: string, policy: LoadedPolicy, filter: AuditFilter) {
    this.source = source;
    this.#policy = policy;
    this.filter = filter;
  }

  /** Loads `policy.wasm` bytes; throws {@linkcode AuditRulesError} naming `source`. */
  static async load(wasm: BufferSource, source: string): Promise<AuditRules> {
    let policy: LoadedPolicy;
    try {
      policy = await loadPolicy(wasm);
    } catch (e) {
      throw new AuditRulesError(`Cannot load audit rules from ${source}: ${(e as Error).message}`);
    }
    const eps = Object.keys(policy.entrypoints ?? {});
    for (const ep of [VIOLATIONS_ENTRYPOINT, FILTER_ENTRYPOINT]) {
      if (!eps.includes(ep)) {
        throw new AuditRulesError(
          `Cannot load audit rules from ${source}: entrypoint "${ep}" is missing (it has: ${
            eps.join(", ") || "none"
          }); build with opa build -t wasm -e ${VIOLATIONS_ENTRYPOINT} -e ${FILTER_ENTRYPOINT}`,
        );
      }
    }
    policy.setData({});
    const raw = policy.evaluate({}, FILTER_ENTRYPOINT) as { result?: unknown }[];
    return new AuditRules(source, policy, compileFilter(raw[0]?.result ?? [], source));
  }

  /** The violations `input` raises (each checked; a malformed one names the rule source). */
  judge(input: AuditInput): RuleViolation[] {
    const raw = this.#policy.evaluate(input, VIOLATIONS_ENTRYPOINT) as { result?: unknown }[];
    const res = raw[0]?.result;
    if (!Array.isArray(res) || res.length === 0) return [];
    const out: RuleViolation[] = [];
    for (const v of res) {
      const o = v as Partial<RuleViolation>;
      if (
        typeof o?.rule !== "string" || typeof o.output !== "string" ||
        typeof o.severity !== "string" || !SEVERITIES.has(o.severity)
      ) {
        throw new AuditRulesError(
          `Audit rules from ${this.source} returned ${
            JSON.stringify(v)
          }: a violation needs rule, ` +
            `output and a severity (${[...SEVERITIES].join(", ")})`,
        );
      }
      out.push({ rule: o.rule, severity: o.severity, output: o.output });
    }
    return out;
  }
}
