/**
 * Stable ids from content: a UUID-shaped SHA-256 digest of canonical JSON, so an id changes only
 * when what it names changes (not when other files, positions or key order change).
 *
 * @module
 */
import { createHash } from "node:crypto";

/**
 * JSON with object keys sorted at every level (arrays keep their order).
 *
 * @example
 * ```ts
 * import { canonicalJson } from "./content_id.ts";
 * canonicalJson({ b: 1, a: [2, { d: 3, c: 4 }] }); // '{"a":[2,{"c":4,"d":3}],"b":1}'
 * ```
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = Object.create(null);
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/**
 * A UUID (RFC 9562 version 8, "custom") made of the first 128 bits of SHA-256 over `parts`.
 *
 * @example
 * ```ts
 * import { contentId } from "./content_id.ts";
 * contentId("policy", '{"a":1}').length; // 36
 * ```
 */
export function contentId(...parts: string[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(`${p.length}:${p}`);
  const b = h.digest();
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = b.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }`;
}
