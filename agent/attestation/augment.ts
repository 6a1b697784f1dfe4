/**
 * The daemon's entry point for the kernel's `augment`: {@linkcode augmentLabels}. It uses the
 * attestation set with {@linkcode useAttestation} (the daemon does this at start); without one it
 * lazily creates one from the default config.
 *
 * @module
 */
import type { TaskContext } from "../../driver/payloads.ts";
import { configSchema } from "../config/schema.ts";
import { createAttestation } from "./builtin.ts";
import type { Attestation } from "./runner.ts";

let current: Attestation | undefined;
let pending: Promise<Attestation> | undefined;

/** Makes `attestation` the one {@linkcode augmentLabels} uses (`undefined` to unset). */
export function useAttestation(attestation: Attestation | undefined): void {
  current = attestation;
  pending = undefined;
}

/**
 * Labels for the process the kernel asks about: sorted `name=value` strings, within the
 * configured budget (partial rather than late). Throws only `AttestationError` in strict mode.
 *
 * @example
 * ```ts ignore
 * import { augmentLabels } from "./augment.ts";
 * const labels = await augmentLabels(message.task_context, AbortSignal.timeout(600));
 * // ["process:name=curl", "process:uid=1000", …]
 * ```
 */
export async function augmentLabels(task: TaskContext, signal?: AbortSignal): Promise<string[]> {
  const a = current ?? await (pending ??= createAttestation(configSchema.parse({})).then((a) => {
    current ??= a;
    return current;
  }));
  return a.augmentLabels(task, signal);
}
