/**
 * The runtime guard: per-workload mandatory access control from the policies' `runtime:`
 * sections, enforced by BPF LSM programs (driver/bpf/guard.bpf.c). {@linkcode openRuntimeGuard}
 * is the one door: it checks the kernel, loads and attaches, proves enforcement with a canary and
 * returns the running service — or throws {@linkcode GuardUnavailableError} saying why and how
 * to fix it (never a silent no-op).
 *
 * @module
 */
import { GuardCapabilityError, GuardPrograms } from "../../driver/bpf/guard.ts";
import { RuntimeGuard, type RuntimeGuardOptions } from "./runtime_guard.ts";
import type { PolicySource } from "../policy/source.ts";

export { type GuardStatus, RuntimeGuard } from "./runtime_guard.ts";
export { type EventFilter, eventMatches, type GuardEventRecord } from "./events.ts";
export { runtimePolicies, selectPolicy } from "./selection.ts";

/** The guard cannot run here; `message` names the cause and the fix. */
export class GuardUnavailableError extends Error {
  override name = "GuardUnavailableError";
}

/** Options of {@linkcode openRuntimeGuard}. */
export interface OpenGuardOptions extends Omit<RuntimeGuardOptions, "kernel"> {
  /** LSM list file (tests simulate a kernel without bpf with a fake one). */
  lsmListPath?: string;
  /** Wait for the first sweep to key every selected process (default true). */
  waitForSweep?: boolean;
}

/**
 * Loads the guard and applies `policies`. Throws {@linkcode GuardUnavailableError} when the
 * kernel cannot enforce (no bpf in lsm=, load refused, canary not denied).
 */
export async function openRuntimeGuard(
  policies: readonly PolicySource[],
  options: OpenGuardOptions,
): Promise<RuntimeGuard> {
  let kernel: GuardPrograms;
  try {
    kernel = GuardPrograms.load({
      agentTgid: Deno.pid,
      ...(options.lsmListPath ? { lsmListPath: options.lsmListPath } : {}),
    });
  } catch (e) {
    if (e instanceof GuardCapabilityError) {
      throw new GuardUnavailableError(
        `Cannot enforce runtime policies: ${e.message}. Runtime rules are refused, not ignored`,
        { cause: e },
      );
    }
    throw e;
  }
  let guard: RuntimeGuard;
  try {
    guard = await RuntimeGuard.start({ ...options, kernel });
  } catch (e) {
    kernel.close();
    if (e instanceof GuardCapabilityError) {
      throw new GuardUnavailableError(`Cannot enforce runtime policies: ${e.message}`, {
        cause: e,
      });
    }
    throw e;
  }
  try {
    await guard.update(policies, options.waitForSweep ?? true);
  } catch (e) {
    guard.close();
    throw e;
  }
  return guard;
}
