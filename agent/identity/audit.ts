/**
 * The issuance audit trail: who asked (the kernel's task context) and what was issued (serial,
 * SPIFFE ID, notAfter) or why it was refused. Records go to the `camblet.identity.audit` logger
 * (refusals at error level) and a bounded in-memory ring that a status API can read.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { TaskContext } from "../../driver/payloads.ts";
import { logger } from "../log.ts";
import type { RefusalReason } from "./decide.ts";

/** One issuance decision: a `csr_sign` or a proxy workload issuance. */
export interface AuditRecord {
  /** ISO time of the decision. */
  time: string;
  /** The kernel's request id. */
  requestId?: string;
  outcome: "issued" | "refused";
  /** For refusals: the machine-readable reason (also the metric label). */
  reason?: RefusalReason;
  /** For refusals: the human explanation. */
  detail?: string;
  /** For `policy_denied`: the reasons the OPA issuance policy gave. */
  policyReasons?: string[];
  /** The SPIFFE ID asked for (when readable) or issued. */
  spiffeId?: string;
  /** Certificate serial (hex), for issued and refusal certificates. */
  serial?: string;
  notAfter?: string;
  policyId?: string;
  egressId?: string;
  task: Pick<TaskContext, "pid" | "uid" | "gid" | "command_path" | "command_name" | "cgroup_path">;
  durationMs: number;
  /** Who asked: the kernel's `csr_sign` or the proxy data plane (absent in older records: kernel). */
  via?: "kernel" | "proxy";
}

/** Options for {@linkcode AuditLog}. */
export interface AuditLogOptions {
  log?: Logger;
  /** Records kept in memory (default 1000). */
  capacity?: number;
  /** Called for every record (e.g. a file sink); must not throw. */
  onRecord?: (record: AuditRecord) => void;
}

/** Records issuance decisions. */
export class AuditLog {
  #log: Logger;
  #capacity: number;
  #ring: AuditRecord[] = [];
  #onRecord: ((record: AuditRecord) => void) | undefined;

  constructor(options: AuditLogOptions = {}) {
    this.#log = options.log ?? logger("identity", "audit");
    this.#capacity = options.capacity ?? 1000;
    this.#onRecord = options.onRecord;
  }

  /** Adds a record and logs it. */
  record(record: AuditRecord): void {
    this.#ring.push(record);
    if (this.#ring.length > this.#capacity) this.#ring.shift();
    const { task, ...rest } = record;
    const props = { ...rest, ...prefixTask(task) };
    if (record.outcome === "issued") this.#log.info("Certificate issued", props);
    else this.#log.error("Certificate refused: {reason}: {detail}", props);
    try {
      this.#onRecord?.(record);
    } catch { /* a sink must not break issuance */ }
  }

  /** The most recent records, oldest first. */
  entries(): readonly AuditRecord[] {
    return [...this.#ring];
  }
}

function prefixTask(task: AuditRecord["task"]): Record<string, unknown> {
  return {
    pid: task.pid,
    uid: task.uid,
    gid: task.gid,
    commandPath: task.command_path,
    commandName: task.command_name,
    cgroupPath: task.cgroup_path,
  };
}
