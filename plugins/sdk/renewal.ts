/**
 * When an agent-held CA certificate (an intermediate from Vault, a downstream CA from SPIRE)
 * should be renewed, as a pure function of times: no I/O and no clock, so tests drive it with any
 * `now`.
 *
 * @module
 */
import { formatDuration } from "./duration.ts";

/** Inputs, all times in epoch ms. */
export interface CaRenewalInput {
  now: number;
  notBefore: number;
  notAfter: number;
  /** The upstream now signs with another issuer (e.g. Vault's root was rotated). */
  upstreamChanged?: boolean;
  /** Consecutive failed renewals and when the last one failed. */
  failures?: number;
  lastFailureAt?: number;
  /** First retry delay after a failure (default 5 s), doubling up to `retryMaxMs` (default 5 min). */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/** The decision. */
export interface CaRenewalPlan {
  renew: boolean;
  /** Why, for logs. */
  reason: string;
  /** Half of the certificate's life: when a renewal becomes due. */
  renewAt: number;
  /** When to ask again (the renewal time, or the next retry after a failure). */
  nextCheckAt: number;
  /** Time the certificate has left (0 when expired). */
  timeLeftMs: number;
  expired: boolean;
}

/**
 * Renew at half of the certificate's life, at once when the upstream issuer changed, and after a
 * failure retry with exponential backoff (never later than `retryMaxMs` apart).
 *
 * @example
 * ```ts
 * import { planCaRenewal } from "./renewal.ts";
 * const h = 3_600_000;
 * planCaRenewal({ now: 13 * h, notBefore: 0, notAfter: 24 * h }).renew; // true
 * planCaRenewal({ now: 11 * h, notBefore: 0, notAfter: 24 * h }).renew; // false
 * ```
 */
export function planCaRenewal(input: CaRenewalInput): CaRenewalPlan {
  const { now, notBefore, notAfter } = input;
  const renewAt = notBefore + Math.floor((notAfter - notBefore) / 2);
  const timeLeftMs = Math.max(0, notAfter - now);
  const expired = now >= notAfter;
  const failures = input.failures ?? 0;
  const base = { renewAt, timeLeftMs, expired };
  const due = now >= renewAt || input.upstreamChanged === true;
  const why = input.upstreamChanged
    ? "the upstream issuer changed"
    : expired
    ? "it expired"
    : `half of its life passed (${formatDuration(timeLeftMs)} left)`;
  if (due && failures > 0 && input.lastFailureAt !== undefined) {
    const delay = Math.min(
      input.retryMaxMs ?? 300_000,
      (input.retryBaseMs ?? 5_000) * 2 ** Math.min(failures - 1, 20),
    );
    const retryAt = input.lastFailureAt + delay;
    if (now < retryAt) {
      return {
        ...base,
        renew: false,
        reason: `waiting to retry (${failures} failed)`,
        nextCheckAt: retryAt,
      };
    }
    return { ...base, renew: true, reason: `${why}; retry ${failures + 1}`, nextCheckAt: now };
  }
  if (due) return { ...base, renew: true, reason: why, nextCheckAt: now };
  return { ...base, renew: false, reason: "not due", nextCheckAt: renewAt };
}
