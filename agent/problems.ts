/**
 * Turns zod issues into located {@linkcode Problem}s with readable field paths.
 *
 * @module
 */
import type { z } from "zod";
import type { Location, Problem } from "./errors.ts";

/**
 * Formats a path as `a.b[0].c`; keys that are not identifiers are quoted (`labels["app:x"]`).
 *
 * @example
 * ```ts
 * import { formatPath } from "./problems.ts";
 * formatPath(["connection", "allowedSPIFFEIDs", 0]); // "connection.allowedSPIFFEIDs[0]"
 * ```
 */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const k of path) {
    if (typeof k === "number") out += `[${k}]`;
    else if (typeof k === "string" && /^[A-Za-z_$][\w$]*$/.test(k)) out += out ? `.${k}` : k;
    else out += `[${JSON.stringify(String(k))}]`;
  }
  return out;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a map";
  if (typeof value === "string") return `"${value}"`;
  return `${typeof value} ${String(value)}`;
}

function get(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/**
 * One problem per zod issue, at `loc`, with the field path prefixed by `prefix` (if any).
 * Unknown keys become one problem each, naming the key. `input` lets messages quote the value.
 */
export function issuesToProblems(
  issues: readonly z.core.$ZodIssue[],
  loc: Location,
  options: { prefix?: readonly PropertyKey[]; input?: unknown } = {},
): Problem[] {
  const prefix = options.prefix ?? [];
  const out: Problem[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        out.push({ ...loc, field: formatPath([...path, key]), message: `unknown field "${key}"` });
      }
      continue;
    }
    let message = issue.message;
    if (issue.code === "invalid_type") {
      const value = get(options.input, issue.path);
      message = value === undefined
        ? "required"
        : `expected ${issue.expected}, got ${describe(value)}`;
    } else if (issue.code === "invalid_union" && options.input !== undefined) {
      message = `${issue.message}: got ${describe(get(options.input, issue.path))}`;
    }
    out.push({ ...loc, field: formatPath(path), message });
  }
  return out;
}
