/**
 * Helpers for a plugin's ONE pure config parser: zod issues to {@linkcode ConfigProblem}s with
 * readable paths (`intermediate.ttl`), unknown keys named, and a zod type for Go durations.
 *
 * @module
 */
import { z } from "zod";
import type { ConfigProblem, ParseResult } from "../types.ts";
import { parseDuration } from "./duration.ts";

function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const k of path) {
    if (typeof k === "number") out += `[${k}]`;
    else if (typeof k === "string" && /^[A-Za-z_$][\w$-]*$/.test(k)) out += out ? `.${k}` : k;
    else out += `[${JSON.stringify(String(k))}]`;
  }
  return out;
}

/** One problem per zod issue; each unknown key is its own problem. */
export function zodProblems(error: z.ZodError): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        out.push({ field: fieldPath([...issue.path, key]), message: `unknown field "${key}"` });
      }
    } else {
      out.push({ field: fieldPath(issue.path), message: issue.message });
    }
  }
  return out;
}

/**
 * Runs a zod schema as a plugin config parser: `undefined` means "no config" (`{}`).
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { parseWith } from "./config.ts";
 * const r = parseWith(z.object({ url: z.string() }).strict(), { url: "x", extra: 1 });
 * r.ok; // false: extra: unknown field "extra"
 * ```
 */
export function parseWith<S extends z.ZodType>(schema: S, raw: unknown): ParseResult<z.output<S>> {
  const result = schema.safeParse(raw ?? {});
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, problems: zodProblems(result.error) };
}

/** A Go duration string (`"24h"`, `"3600s"`) parsed to milliseconds; must be positive. */
export const durationMs: z.ZodType<number, string> = z.string().transform((s, ctx) => {
  try {
    const ms = parseDuration(s);
    if (ms <= 0) throw new RangeError(`Cannot use duration "${s}": it must be positive`);
    return ms;
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message });
    return z.NEVER;
  }
});
