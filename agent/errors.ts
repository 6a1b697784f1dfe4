/**
 * Error types shared by the whole agent. `main.ts` maps them to exit codes:
 * {@linkcode UsageError} exits 2 with help, everything else exits 1.
 *
 * @module
 */

/** Where a problem was found: the more of these are known, the better the message. */
export interface Location {
  /** Policy source or config layer, e.g. `env`, `flag`, `git(main)`. */
  source?: string;
  /** File path as the user wrote it. */
  file?: string;
  /** 0-based index of the item in a YAML list. */
  item?: number;
  /** 1-based line in the file, when known. */
  line?: number;
  /** Field path inside the item, e.g. `connection.allowedSPIFFEIDs[0]`. */
  field?: string;
}

/** One reported problem: a location and a reason. */
export interface Problem extends Location {
  message: string;
}

/**
 * Formats a problem as `file:line: item 2: field: reason`.
 *
 * @example
 * ```ts
 * import { formatProblem } from "./errors.ts";
 * formatProblem({ file: "web.yaml", item: 2, field: "certificate", message: "Required" });
 * // "web.yaml: item 2: certificate: Required"
 * ```
 */
export function formatProblem(p: Problem): string {
  const parts: string[] = [];
  if (p.source !== undefined && p.source !== p.file) parts.push(p.source);
  if (p.file !== undefined) parts.push(p.line !== undefined ? `${p.file}:${p.line}` : p.file);
  if (p.item !== undefined) parts.push(`item ${p.item}`);
  if (p.field !== undefined && p.field !== "") parts.push(p.field);
  parts.push(p.message);
  return parts.join(": ");
}

/** The message of anything thrown (an `Error`'s message, else its string form). */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Bad command-line usage: `main.ts` prints the command's help and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Input that failed validation; carries every problem found, not just the first. */
export class ValidationError extends Error {
  override name = "ValidationError";
  readonly problems: readonly Problem[];
  constructor(what: string, problems: readonly Problem[], options?: ErrorOptions) {
    const n = problems.length;
    super(
      `${what}: ${n} problem${n === 1 ? "" : "s"}\n` +
        problems.map((p) => "  " + formatProblem(p)).join("\n"),
      options,
    );
    this.problems = problems;
  }
}

// Defined in driver/ so that the driver, plugins and the agent throw and catch one class.
export { CapabilityError } from "../driver/errors.ts";
