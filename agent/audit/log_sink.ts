/**
 * The log sink for audit records: one structured line per violation through the agent's logger
 * (logfmt on stderr or the journal), at a level from the rule's severity.
 *
 * @module
 */
import { logger } from "../log.ts";
import type { AuditRecord, AuditSink } from "./engine.ts";

/** The logger calls the sink uses (the agent's logtape logger has them). */
export interface AuditLogger {
  error(message: string, props: Record<string, unknown>): void;
  warn(message: string, props: Record<string, unknown>): void;
  info(message: string, props: Record<string, unknown>): void;
  debug(message: string, props: Record<string, unknown>): void;
}

const LEVEL: Record<string, keyof AuditLogger> = {
  emergency: "error",
  alert: "error",
  critical: "error",
  error: "error",
  warning: "warn",
  notice: "info",
  informational: "info",
  debug: "debug",
};

/** A sink logging each record under `camblet.audit`. */
export function logSink(log: AuditLogger = logger("audit") as unknown as AuditLogger): AuditSink {
  return (r: AuditRecord) => {
    log[LEVEL[r.severity] ?? "warn"](`Audit: ${r.rule}`, {
      severity: r.severity,
      output: r.output,
      syscall: r.event.syscall,
      path: r.event.path,
      pid: r.process.pid,
      process: r.process.name,
      parent: r.process.ancestors[0]?.name ?? "",
      container: r.container.id,
      spiffeId: r.spiffe_id,
    });
  };
}
