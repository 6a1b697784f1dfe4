/**
 * zod schemas of the Camblet policy and service files (camblet-compat §2.1, §2.3): YAML lists,
 * strict (unknown fields are errors), with the kernel's limits and SPIFFE syntax checked per
 * field. The same schemas produce the committed JSON Schema.
 *
 * @module
 */
import { z } from "zod";
import { parseDuration } from "../duration.ts";
import { spiffeIdProblem, spiffePathProblem } from "../../driver/spiffe.ts";
import { KERNEL_LIMITS } from "../../driver/payloads.ts";
import { addressProblem, isHostname } from "./address.ts";
import { runtimeSchema } from "./runtime.ts";

/** Most `dnsNames` a certificate may carry (Go agent's rule). */
export const MAX_DNS_NAMES = 100;

/** Service label keys (Go agent's regex). */
export const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9_:-]*[A-Za-z0-9])?$/;

const TAG = /^[A-Za-z0-9_-]+$/;

function describe(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a map";
  if (typeof v === "string") return JSON.stringify(v);
  return `${typeof v} ${String(v)}`;
}

/** Adds one issue per repeated element, at the repeat's index. */
function unique<T>(what: string) {
  return (list: T[], ctx: z.RefinementCtx) => {
    const seen = new Set<T>();
    list.forEach((v, i) => {
      if (seen.has(v)) {
        ctx.addIssue({ code: "custom", path: [i], message: `duplicate ${what} ${describe(v)}` });
      }
      seen.add(v);
    });
  };
}

function check(problem: (s: string) => string | undefined) {
  return (s: string, ctx: z.RefinementCtx) => {
    const p = problem(s);
    if (p) ctx.addIssue({ code: "custom", message: p });
  };
}

/** Why `text` cannot be a certificate TTL, or `undefined`. */
export function ttlProblem(text: string): string | undefined {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (e) {
    return (e as Error).message;
  }
  return ms > 0 ? undefined : `TTL "${text}" must be longer than zero`;
}

const scalar = z.union([z.string(), z.number()]);

/** Message for a selector value that is not a string, a number or a list of them. */
export function selectorValueMessage(value: unknown): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return "an empty list matches nothing; remove the key or add values";
    const i = value.findIndex((v) => typeof v !== "string" && !Number.isFinite(v));
    return `list item ${i} is ${describe(value[i])}; selector values must be strings or numbers`;
  }
  const hint = typeof value === "boolean" ? ` (quote it: "${value}")` : "";
  return `selector value is ${
    describe(value)
  }; it must be a string, a number or a list of them${hint}`;
}

/** One selector value: `v` or `[v1, v2]` (= OR); numbers are used exactly as written. */
export const selectorValueSchema = z.union([
  scalar,
  z.array(scalar).min(1, selectorValueMessage([])),
], {
  error: (iss) => selectorValueMessage(iss.input),
}).meta({ description: "label value; a list means any of them" });

/** One selector map: label name → value(s); all keys must match (AND). `{}` matches everything. */
export const selectorMapSchema = z.record(
  z.string()
    .min(1, "selector label name is empty")
    .regex(/^[^=]*$/, {
      error: (iss) => `selector label name ${describe(iss.input)} must not contain "="`,
    }),
  selectorValueSchema,
).meta({ description: "label name → value(s); every key must match; {} matches everything" });

const selectors = z.array(selectorMapSchema)
  .min(1, "at least one selector map is required ({} matches everything)")
  .meta({ description: "selector maps; any one of them may match (OR)" });

const certificateSchema = z.object({
  workloadID: z.string()
    .superRefine(check((s) => spiffePathProblem(s, true)))
    .meta({
      description:
        "SPIFFE ID path after spiffe://<trust domain>/; [label] is replaced by the label's value",
    }),
  dnsNames: z.array(
    z.string()
      .refine(isHostname, { error: (iss) => `${describe(iss.input)} is not a hostname` })
      .meta({ format: "hostname" }),
  )
    .max(MAX_DNS_NAMES, `at most ${MAX_DNS_NAMES} DNS names`)
    .superRefine(unique("DNS name"))
    .optional()
    .meta({ description: "DNS SANs of the workload certificate" }),
  ttl: z.string()
    .superRefine(check(ttlProblem))
    .optional()
    .meta({
      description: 'certificate lifetime, e.g. "3600s", "1h", "90m"',
      // A plain string, not String.raw: the bundle writes µ as \u00b5, which only a cooked
      // string turns back into µ (the printed schema must not depend on how the agent runs).
      pattern: "^((\\d+(\\.\\d*)?|\\.\\d+)(ns|us|µs|ms|s|m|h|d))+$",
    }),
}).strict();

const connectionSchema = z.object({
  mtls: z.enum(["STRICT", "DISABLE", "UNSET"], {
    error: (iss) => `mtls is ${describe(iss.input)}; use STRICT, DISABLE or UNSET`,
  })
    .optional()
    .meta({ description: "DISABLE = TLS without client certificates; anything else = mTLS" }),
  passthrough: z.boolean().optional()
    .meta({ description: "the application already speaks TLS" }),
  allowedSPIFFEIDs: z.array(
    z.string()
      .superRefine(check(spiffeIdProblem))
      .meta({ pattern: String.raw`^spiffe://[a-z0-9._-]+(/[A-Za-z0-9._-]+)*$` }),
  )
    .max(
      KERNEL_LIMITS.maxAllowedSpiffeIds,
      `at most ${KERNEL_LIMITS.maxAllowedSpiffeIds} allowed SPIFFE IDs (the kernel's fixed array)`,
    )
    .superRefine(unique("SPIFFE ID"))
    .optional()
    .meta({ description: "peer SPIFFE IDs (or prefixes at a / boundary); empty = any peer" }),
  http: z.boolean().optional()
    .meta({ description: "inject X-Camblet-Spiffe-ID into inbound HTTP/1.x requests" }),
}).strict();

/** One egress entry: selectors match the destination service's labels. */
export const egressSchema = z.object({
  selectors,
  certificate: certificateSchema,
  connection: connectionSchema.optional(),
}).strict();

/** One policy. */
export const policySchema = z.object({
  selectors,
  certificate: certificateSchema,
  connection: connectionSchema.optional(),
  egress: z.array(egressSchema).optional()
    .meta({ description: "overrides for outbound connections to matching services" }),
  runtime: runtimeSchema.optional(),
}).strict();

/** A policy file: a YAML (or JSON) list of policies. */
export const policyFileSchema = z.array(policySchema).meta({
  title: "Camblet policies",
  description: "A list of camblet-agent policies (YAML or JSON). {{.TrustDomain}} is replaced " +
    "with the agent's trust domain before parsing.",
});

const addressSchema = z.object({
  address: z.string()
    .superRefine(check(addressProblem))
    .meta({ description: "IPv4, IPv6 or a hostname (resolved by the agent)" }),
  port: z.number().int({ error: (iss) => `port ${describe(iss.input)} is not a whole number` })
    .min(1, { error: (iss) => `port ${describe(iss.input)} is outside 1..65535` })
    .max(65535, { error: (iss) => `port ${describe(iss.input)} is outside 1..65535` }),
  tags: z.array(
    z.string().regex(TAG, {
      error: (iss) => `tag ${describe(iss.input)} may contain only A-Z a-z 0-9 _ -`,
    }),
  )
    .superRefine(unique("tag"))
    .optional(),
}).strict();

/** One service entry: addresses and the labels egress selectors see. */
export const serviceSchema = z.object({
  addresses: z.array(addressSchema).min(1, "at least one address is required"),
  labels: z.record(
    z.string().regex(LABEL_KEY, {
      error: (iss) => `label name ${describe(iss.input)} must match ${LABEL_KEY.source}`,
    }),
    z.union([z.string(), z.number()], {
      error: (iss) => `label value is ${describe(iss.input)}; it must be a string or a number`,
    }),
  ).meta({ description: "label name → value, matched by egress selectors" }),
}).strict();

/** A service file: a YAML (or JSON) list of services. */
export const serviceFileSchema = z.array(serviceSchema).meta({
  title: "Camblet services",
  description: "A list of camblet-agent service entries (YAML or JSON): destinations whose " +
    "outbound connections the kernel intercepts, and their labels.",
});

/** A policy as written (validated). */
export type PolicyDocument = z.infer<typeof policySchema>;
/** An egress entry as written (validated). */
export type EgressDocument = z.infer<typeof egressSchema>;
/** A service as written (validated). */
export type ServiceDocument = z.infer<typeof serviceSchema>;
