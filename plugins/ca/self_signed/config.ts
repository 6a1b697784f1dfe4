/**
 * The `self-signed` CA's config and its one pure parser (shared by `run` and `validate`).
 *
 * @module
 */
import { z } from "zod";
import { durationMs, parseWith } from "../../sdk/config.ts";
import type { ParseResult } from "../../types.ts";

const HOUR = 3_600_000;

const intermediateSchema = z.object({
  commonName: z.string().min(1).default("Camblet intermediate CA"),
  ttl: durationMs.default(8760 * HOUR),
}).strict();

const schema = z.object({
  /** The CA file (`--ca-pem-path`); the agent fills it from `agent.caPEMPath`. */
  caPemPath: z.string({ error: "required (agent.caPEMPath or --ca-pem-path)" }).min(1),
  keySize: z.union([z.literal(2048), z.literal(3072), z.literal(4096)], {
    error: "must be 2048, 3072 or 4096",
  }).default(2048),
  commonName: z.string().min(1).default("Camblet root CA"),
  organization: z.string().optional(),
  rootTtl: durationMs.default(87_600 * HOUR),
  /** Longest leaf; longer requests are clamped. */
  maxCertTtl: durationMs.default(168 * HOUR),
  /** Sign leaves with an intermediate kept in ca.pem beside the root. */
  intermediate: z.union([z.boolean(), intermediateSchema]).default(false),
  /** notBefore of leaves and CAs this far in the past, for clock skew between hosts. */
  backdate: durationMs.default(120_000),
  /** Rotate a root or intermediate automatically when it has less than this left. */
  rotateBefore: durationMs.default(720 * HOUR),
  autoRotate: z.boolean().default(true),
  /** Reload when ca.pem changes on disk (e.g. after `camblet-agent ca rotate`). */
  watch: z.boolean().default(true),
}).strict();

/** Intermediate settings after defaults. */
export interface IntermediateConfig {
  commonName: string;
  ttlMs: number;
}

/** Parsed `self-signed` config; durations in milliseconds. */
export interface SelfSignedConfig {
  caPemPath: string;
  keySize: 2048 | 3072 | 4096;
  commonName: string;
  organization?: string;
  rootTtlMs: number;
  maxCertTtlMs: number;
  intermediate?: IntermediateConfig;
  backdateMs: number;
  rotateBeforeMs: number;
  autoRotate: boolean;
  watch: boolean;
}

/**
 * Parses `plugins.ca.self-signed` (plus `caPemPath`). Pure; reports every problem at once.
 *
 * @example
 * ```ts
 * import { parseSelfSignedConfig } from "./config.ts";
 * const r = parseSelfSignedConfig({ caPemPath: "/etc/camblet/ca.pem", keySize: 1024 });
 * r.ok; // false: keySize: must be 2048, 3072 or 4096
 * ```
 */
export function parseSelfSignedConfig(raw: unknown): ParseResult<SelfSignedConfig> {
  const r = parseWith(schema, raw);
  if (!r.ok) return r;
  const v = r.value;
  const inter = v.intermediate === true
    ? intermediateSchema.parse({})
    : v.intermediate === false
    ? undefined
    : v.intermediate;
  const value: SelfSignedConfig = {
    caPemPath: v.caPemPath,
    keySize: v.keySize,
    commonName: v.commonName,
    rootTtlMs: v.rootTtl,
    maxCertTtlMs: v.maxCertTtl,
    backdateMs: v.backdate,
    rotateBeforeMs: v.rotateBefore,
    autoRotate: v.autoRotate,
    watch: v.watch,
  };
  if (v.organization !== undefined) value.organization = v.organization;
  if (inter) value.intermediate = { commonName: inter.commonName, ttlMs: inter.ttl };
  if (value.backdateMs > 3_600_000) {
    return { ok: false, problems: [{ field: "backdate", message: "must be at most 1h" }] };
  }
  return { ok: true, value };
}
