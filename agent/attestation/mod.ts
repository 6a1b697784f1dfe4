/**
 * Workload attestation: the labels the kernel matches policies on. The daemon creates one
 * {@linkcode Attestation} with {@linkcode createAttestation} and answers each `augment` with
 * `attestation.augmentLabels(task, signal)` (sorted `name=value` strings).
 *
 * @module
 */
export {
  Attestation,
  AttestationError,
  type AttestationOptions,
  type AugmentResult,
} from "./runner.ts";
export { BUILTIN_ATTESTORS, createAttestation, planAttestors } from "./builtin.ts";
export { listPids, taskContextFromProc } from "../../plugins/attestor/_lib/task_from_proc.ts";
export { augmentLabels, useAttestation } from "./augment.ts";
