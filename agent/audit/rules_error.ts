/**
 * The error of audit rules that cannot be used. Its own module: rules.ts (loading) and
 * prefilter.ts (the filter declarations) both throw it, and rules.ts calls prefilter.ts.
 *
 * @module
 */

/** Rules that cannot be used, naming where they came from and why. */
export class AuditRulesError extends Error {
  override name = "AuditRulesError";
}
