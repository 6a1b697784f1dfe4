/**
 * One audit violation as a line of text (`audit test`, `audit capture`, `events`). Apart from
 * agent/cli/audit.ts so that `events` does not load the rule engine.
 *
 * @module
 */
import type { AuditRecord } from "../audit/engine.ts";

/** One line of text output. */
export function formatRecord(r: AuditRecord): string {
  const chain = [r.process, ...r.process.ancestors].map((p) => `${p.name}[${p.pid}]`).join(" < ");
  return `${r.time} ${r.severity.toUpperCase()} ${r.rule}: ${r.output} chain=${chain}` +
    (r.spiffe_id ? ` ${r.spiffe_id}` : "");
}
