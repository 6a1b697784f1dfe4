/**
 * What to do about the Vault token now, as a pure function of times: renew it at half its TTL
 * (`auth/token/renew-self`), log in again when it cannot be renewed, has expired or was refused,
 * and back off after failures.
 *
 * @module
 */

/** Inputs, times in epoch ms. */
export interface TokenPlanInput {
  now: number;
  /** When the current TTL was learned (login, lookup or renewal). */
  obtainedAt: number;
  /** TTL at `obtainedAt`; 0 for a token that never expires (e.g. a root token). */
  ttlMs: number;
  renewable: boolean;
  /** The auth method can log in again (AppRole, Kubernetes, cert); a static token cannot. */
  canLogin: boolean;
  /** A request was refused with 403 since the last login. */
  forbidden?: boolean;
  failures?: number;
  lastFailureAt?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/** The decision. */
export interface TokenPlan {
  action: "none" | "renew" | "login";
  reason: string;
  /** When the token expires (absent for a token without TTL). */
  expiresAt?: number;
  /** Something the operator must fix (logged as an error). */
  problem?: string;
}

/**
 * Decides whether to renew the token or log in again.
 *
 * @example
 * ```ts
 * import { planToken } from "./token_plan.ts";
 * planToken({ now: 31, obtainedAt: 0, ttlMs: 60, renewable: true, canLogin: false }).action; // "renew"
 * planToken({ now: 31, obtainedAt: 0, ttlMs: 60, renewable: false, canLogin: true }).action; // "login"
 * ```
 */
export function planToken(i: TokenPlanInput): TokenPlan {
  const failures = i.failures ?? 0;
  const expiresAt = i.ttlMs > 0 ? i.obtainedAt + i.ttlMs : undefined;
  const at = expiresAt === undefined ? {} : { expiresAt };
  if (failures > 0 && i.lastFailureAt !== undefined) {
    const delay = Math.min(
      i.retryMaxMs ?? 300_000,
      (i.retryBaseMs ?? 5_000) * 2 ** Math.min(failures - 1, 20),
    );
    if (i.now < i.lastFailureAt + delay) {
      return { ...at, action: "none", reason: `waiting to retry (${failures} failed)` };
    }
  }
  if (i.forbidden && i.canLogin) {
    return { ...at, action: "login", reason: "Vault refused the token" };
  }
  if (i.forbidden) {
    return {
      ...at,
      action: "none",
      reason: "Vault refused the token",
      problem:
        "Vault refuses the token (revoked, expired or missing a policy); give the agent a new one",
    };
  }
  if (expiresAt === undefined) return { action: "none", reason: "the token does not expire" };
  if (i.now >= expiresAt) {
    return i.canLogin
      ? { ...at, action: "login", reason: "the token expired" }
      : { ...at, action: "none", reason: "the token expired", problem: "the Vault token expired" };
  }
  if (i.now < i.obtainedAt + i.ttlMs / 2) return { ...at, action: "none", reason: "not due" };
  if (i.renewable && (failures === 0 || !i.canLogin)) {
    return { ...at, action: "renew", reason: "half of its TTL passed" };
  }
  if (i.canLogin) {
    return {
      ...at,
      action: "login",
      reason: i.renewable ? "renewal failed" : "the token is not renewable",
    };
  }
  return {
    ...at,
    action: "none",
    reason: "the token is not renewable",
    problem: "the Vault token cannot be renewed and will expire",
  };
}
