/**
 * Errors a plugin throws for the agent to recognise: {@linkcode CapabilityError} when the host or
 * the upstream cannot give what the agent needs (e.g. a non-RSA CA chain with camblet-driver).
 * Re-exported from driver/errors.ts (as the agent does) so that all always mean the same class.
 *
 * @module
 */
export { CapabilityError } from "../../driver/errors.ts";
