/**
 * The OPA issuance hook: before the identity manager signs, a Rego policy compiled to wasm
 * decides. Evaluation is in-process and synchronous (microseconds), so it never puts the kernel's
 * deadline at risk. It fails closed: no decision or an evaluation error is a denial.
 *
 * @module
 */
import type { LoadedPolicy } from "@open-policy-agent/opa-wasm";
import { z } from "zod";
import type { TaskContext } from "../../driver/payloads.ts";

/** The default entrypoint of `policies/rego/issuance.rego`. */
export const DEFAULT_ENTRYPOINT = "camblet/issuance/decision";

/** What the policy sees (snake_case, as Rego authors expect). */
export interface IssuanceInput {
  spiffe_id: string;
  trust_domain: string;
  dns_names: string[];
  ttl_seconds: number;
  task: Partial<TaskContext>;
  /** Process labels, `k=v`. */
  labels: string[];
  /** The compiled policy (and egress) that assigns the SPIFFE ID, when known. */
  policy?: Record<string, unknown>;
}

/** The policy's answer. */
export interface IssuanceDecision {
  allow: boolean;
  /** Why it was denied (empty when allowed). */
  reasons: string[];
}

/** A loaded issuance policy. */
export interface IssuanceHook {
  readonly entrypoint: string;
  decide(input: IssuanceInput): IssuanceDecision;
}

const decisionSchema = z.union([
  z.boolean().transform((allow) => ({ allow, reasons: allow ? [] : ["denied by policy"] })),
  z.object({
    allow: z.boolean(),
    reasons: z.array(z.string()).optional(),
    reason: z.string().optional(),
  }).transform((d) => ({
    allow: d.allow,
    reasons: d.reasons ?? (d.reason ? [d.reason] : d.allow ? [] : ["denied by policy"]),
  })),
]);

/** Options for {@linkcode loadIssuanceHook}. */
export interface IssuanceHookOptions {
  /** Rule path, e.g. `camblet/issuance/decision`. */
  entrypoint?: string;
  /** OPA `data` document (e.g. a bundle's data.json). */
  data?: Record<string, unknown>;
}

/**
 * Loads an opa-compiled wasm module (`opa build -t wasm -e <entrypoint>` → `policy.wasm`).
 * Throws `TypeError` when the module lacks the entrypoint.
 */
export async function loadIssuanceHook(
  wasm: BufferSource,
  options: IssuanceHookOptions = {},
): Promise<IssuanceHook> {
  const entrypoint = options.entrypoint ?? DEFAULT_ENTRYPOINT;
  // opa-wasm (and its yaml 1) loads only when a hook is configured.
  const { loadPolicy } = await import("@open-policy-agent/opa-wasm");
  const policy: LoadedPolicy = await loadPolicy(wasm);
  const entrypoints = Object.keys(policy.entrypoints ?? {});
  if (!entrypoints.includes(entrypoint)) {
    throw new TypeError(
      `Cannot load issuance policy: entrypoint "${entrypoint}" is not in the wasm module (it has: ${
        entrypoints.join(", ") || "none"
      }); build it with opa build -t wasm -e ${entrypoint}`,
    );
  }
  policy.setData(options.data ?? {});
  return {
    entrypoint,
    decide(input: IssuanceInput): IssuanceDecision {
      let raw: unknown;
      try {
        raw = policy.evaluate(input, entrypoint);
      } catch (e) {
        return { allow: false, reasons: [`policy evaluation failed: ${(e as Error).message}`] };
      }
      const first = Array.isArray(raw) ? (raw[0] as { result?: unknown } | undefined) : undefined;
      if (!first || first.result === undefined) {
        return { allow: false, reasons: [`policy ${entrypoint} produced no decision`] };
      }
      const parsed = decisionSchema.safeParse(first.result);
      if (!parsed.success) {
        return {
          allow: false,
          reasons: [
            `policy ${entrypoint} returned ${JSON.stringify(first.result)}, not a decision`,
          ],
        };
      }
      return parsed.data;
    },
  };
}
