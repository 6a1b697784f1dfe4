/**
 * The kernel's view of a CA plugin for fault tests: the real identity manager in front of the CA,
 * fed the capture's `csr_sign` from python3, and every answer checked as the kernel would read it.
 * Nothing here may throw for a CA failure: that is what the tests prove.
 *
 * @module
 */
import type { CertificateAuthority } from "../../plugins/ca/types.ts";
import type { Clock } from "../../plugins/types.ts";
import { type AnswerCheck, checkKernelAnswer } from "../../driver/answer_check.ts";
import { AuditLog, type AuditRecord } from "../../agent/identity/audit.ts";
import { IdentityManager } from "../../agent/identity/manager.ts";
import { MetricsRegistry } from "../../plugins/sdk/metrics.ts";
import { captureCsrSign, capturePayloads, taskLabels } from "./identity_capture.ts";

/** One answer to the capture's `csr_sign`. */
export interface KernelAsk {
  /** `issued`: trusted leaf; `refused`: a refusal certificate. */
  outcome: "issued" | "refused";
  /** The audit record of the decision. */
  record: AuditRecord;
  check: AnswerCheck;
  /** Time to answer, ms. */
  ms: number;
}

/** A manager in front of a CA. */
export interface KernelPath {
  manager: IdentityManager;
  /** Asks as the kernel does; never rejects (a rejection fails the test). */
  ask(): Promise<KernelAsk>;
}

/** Builds the kernel path for `ca` (trust domain `acme.test`, budget 500 ms like the daemon). */
export async function kernelPath(
  ca: CertificateAuthority,
  clock: Clock,
  options: { budgetMs?: number } = {},
): Promise<KernelPath> {
  const payloads = await capturePayloads();
  const request = await captureCsrSign("python3");
  const audit = new AuditLog();
  const manager = await IdentityManager.create({
    ca,
    trustDomain: "acme.test",
    payloads: () => payloads,
    labelsFor: (task) => Promise.resolve(taskLabels(task)),
    defaultCertTtlMs: 3_600_000,
    budgetMs: options.budgetMs ?? 500,
    clock,
    audit,
    metrics: new MetricsRegistry(),
  });
  return {
    manager,
    async ask() {
      const started = performance.now();
      const answer = await manager.signForKernel({
        id: request.id,
        task: request.task_context,
        data: request.data,
      });
      const ms = performance.now() - started;
      const check = await checkKernelAnswer(answer, { now: clock.now() });
      const record = audit.entries().at(-1)!;
      return { outcome: check.trusted ? "issued" : "refused", record, check, ms };
    },
  };
}
