/**
 * Audit rules compiled by `opa build -t wasm -e camblet/audit/violations -e camblet/audit/filter`
 * and evaluated in the agent (@open-policy-agent/opa-wasm). `filter` is evaluated once, at load:
 * the union of what every rule declares it can match becomes the in-kernel prefilter, and each
 * rule's own declaration decides in JS which events reach the wasm at all.
 *
 * @module
 */
import type { LoadedPolicy } from "@open-policy-agent/opa-wasm";
import { SYSCALLS } from "../../driver/bpf/audit_layout.ts";
import type { AuditFilter } from "../../driver/bpf/audit.ts";
import { compileFilter } from "./prefilter.ts";
import { AuditRulesError } from "./rules_error.ts";
import type { AuditInput } from "./context.ts";

export { AuditRulesError };

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

/**
 * Per syscall, the path prefixes some rule naming it can match (`null`: any path). Tighter than
 * the kernel's filter, which has one prefix set for all syscalls and sees unresolved paths.
 */
export type RuleScopes = Map<string, string[] | null>;

/** The scopes of a compiled filter's groups (one per declaration, validated by compileFilter). */
export function compileScopes(filter: AuditFilter): RuleScopes {
  const out: RuleScopes = new Map();
  for (const g of filter.groups ?? []) {
    for (const s of g.syscalls) {
      const had = out.get(s);
      if (g.prefixes === undefined || SYSCALLS.get(s)!.path === undefined) out.set(s, null);
      else if (had !== null) out.set(s, [...new Set([...(had ?? []), ...g.prefixes])]);
    }
  }
  return out;
}

/** True when some rule's declaration covers this syscall and path (else no rule can match). */
export function inScope(scopes: RuleScopes, syscall: string, path: string): boolean {
  const px = scopes.get(syscall);
  if (px === undefined) return false;
  // Not absolute: the cwd or dirfd was unknown; the rules decide, as the kernel let it through.
  if (px === null || !path.startsWith("/")) return true;
  for (const p of px) if (path.startsWith(p)) return true;
  return false;
}

/** opa-wasm's LoadedPolicy internals the fast path writes to (ABI 1.2 `opa_eval`). */
interface PolicyInternals {
  minorVersion?: number;
  mem: WebAssembly.Memory;
  dataAddr: number;
  dataHeapPtr: number;
  entrypoints: Record<string, number>;
  wasmInstance: {
    exports: {
      opa_eval(
        reserved: number,
        entrypoint: number,
        data: number,
        input: number,
        inputLen: number,
        heap: number,
        format: number,
      ): number;
    };
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** What `opa_eval` writes when no rule fires (the common case: no JSON.parse for it). */
const NO_VIOLATIONS = encoder.encode('[{"result":[]}]');
const PAGE = 64 * 1024;

/** Loaded rules: judge inputs, and the prefilter they need. */
export class AuditRules {
  readonly source: string;
  readonly filter: AuditFilter;
  readonly scopes: RuleScopes;
  /** Inputs no rule's declaration covers: answered without evaluating the wasm. */
  skipped = 0;
  #policy: LoadedPolicy;
  /** Inputs equal to the one before (see #evaluate): answered without the wasm. */
  repeated = 0;
  #fast: { p: PolicyInternals; ep: number } | undefined;
  #last: { json: string; raw: unknown } | undefined;

  private constructor(
    source: string,
    policy: LoadedPolicy,
    filter: AuditFilter,
    scopes: RuleScopes,
  ) {
    this.source = source;
    this.#policy = policy;
    this.filter = filter;
    this.scopes = scopes;
    const p = policy as unknown as PolicyInternals;
    const ep = p.entrypoints?.[VIOLATIONS_ENTRYPOINT];
    if (
      (p.minorVersion ?? 0) >= 2 && typeof ep === "number" &&
      typeof p.wasmInstance?.exports?.opa_eval === "function" && p.mem instanceof WebAssembly.Memory
    ) this.#fast = { p, ep };
  }

  /** Loads `policy.wasm` bytes; throws {@linkcode AuditRulesError} naming `source`. */
  static async load(wasm: BufferSource, source: string): Promise<AuditRules> {
    let policy: LoadedPolicy;
    try {
      // Loaded on first use: ~3 MB of heap and 50-70 ms that a CLI command without audit skips.
      const { loadPolicy } = await import("@open-policy-agent/opa-wasm");
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
    const decls = raw[0]?.result ?? [];
    const filter = compileFilter(decls, source);
    return new AuditRules(source, policy, filter, compileScopes(filter));
  }

  /**
   * opa-wasm's `evaluate` without its per-call copies: the input's JSON is encoded straight into
   * the wasm heap and a result with no violations is recognised by its bytes.
   */
  #evaluate(input: AuditInput): unknown {
    const f = this.#fast;
    if (!f) return this.#policy.evaluate(input, VIOLATIONS_ENTRYPOINT);
    const { p, ep } = f;
    const json = JSON.stringify(input);
    // A flood repeats one syscall: the same input within a millisecond (time, tid, path, all
    // equal) gets the same answer from a policy, so the wasm is not asked again.
    if (json === this.#last?.json) {
      this.repeated++;
      return this.#last.raw;
    }
    const at = p.dataHeapPtr;
    const room = at + json.length * 3 - p.mem.buffer.byteLength;
    if (room > 0) p.mem.grow(Math.ceil(room / PAGE));
    let mem = new Uint8Array(p.mem.buffer);
    const { written } = encoder.encodeInto(json, mem.subarray(at));
    const ret = p.wasmInstance.exports.opa_eval(0, ep, p.dataAddr, at, written, at + written, 0);
    if (mem.buffer !== p.mem.buffer) mem = new Uint8Array(p.mem.buffer); // the heap grew
    const end = mem.indexOf(0, ret);
    if (end - ret === NO_VIOLATIONS.length) {
      let same = true;
      for (let i = 0; i < NO_VIOLATIONS.length && same; i++) {
        same = mem[ret + i] === NO_VIOLATIONS[i];
      }
      if (same) {
        this.#last = { json, raw: undefined };
        return undefined;
      }
    }
    const raw = JSON.parse(decoder.decode(mem.subarray(ret, end)));
    this.#last = { json, raw };
    return raw;
  }

  /** The violations `input` raises (each checked; a malformed one names the rule source). */
  judge(input: AuditInput): RuleViolation[] {
    if (!inScope(this.scopes, input.syscall, input.path)) {
      this.skipped++;
      return [];
    }
    const raw = this.#evaluate(input) as { result?: unknown }[] | undefined;
    const res = raw?.[0]?.result;
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
