/**
 * Shared bits of the attestors' config parsers.
 *
 * @module
 */
import type { z } from "zod";
import type { ConfigProblem } from "../../types.ts";

/** zod issues → plugin config problems (`field` relative to the plugin's config). */
export function zodProblems(error: z.ZodError): ConfigProblem[] {
  return error.issues.map((i) => ({
    field: i.path.map((p) => typeof p === "number" ? `[${p}]` : String(p)).join(".")
      .replace(/\.\[/g, "["),
    message: i.code === "unrecognized_keys"
      ? `unknown key${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `"${k}"`).join(", ")}`
      : i.message,
  }));
}
