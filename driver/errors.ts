/**
 * Error types low enough for every layer: the driver throws them, plugins re-export them from the
 * SDK and the agent from `agent/errors.ts`, so all three mean the same class.
 *
 * @module
 */

/**
 * A capability the host or a plugin lacks (e.g. no /dev/camblet, EC root with the kernel driver).
 *
 * @example
 * ```ts
 * import { CapabilityError } from "./errors.ts";
 * new CapabilityError("Cannot load eBPF: no CAP_BPF").name; // "CapabilityError"
 * ```
 */
export class CapabilityError extends Error {
  override name = "CapabilityError";
}
