/**
 * When to rotate, as a pure function of times (no I/O, no clock): the self-signed CA, `ca rotate`
 * and the tests all ask {@linkcode planRotation}.
 *
 * @module
 */
import { formatDuration } from "../../sdk/duration.ts";

/** What can be rotated. */
export type RotationTarget = "root" | "intermediate";

/** A retired anchor as far as the decision cares. */
export interface RetiredTimes {
  keepUntil: number;
  notAfter: number;
}

/** The inputs: all times in epoch ms. */
export interface RotationInput<R extends RetiredTimes> {
  now: number;
  rootNotAfter: number;
  /** The root's key is in ca.pem (needed to sign an intermediate). */
  rootKeyAvailable: boolean;
  /** notAfter of the intermediate that signs leaves; absent when the root signs. */
  intermediateNotAfter?: number;
  /** The config asks for an intermediate. */
  wantIntermediate: boolean;
  retired: readonly R[];
  rotateBeforeMs: number;
  maxCertTtlMs: number;
  /** Latest notAfter of leaves issued under the current root, when known (in-process rotation). */
  lastIssuedNotAfter?: number;
  /** `ca rotate` / the API: rotate this now. */
  force?: RotationTarget;
}

/** The decision. */
export interface RotationPlan<R extends RetiredTimes> {
  action: "none" | RotationTarget;
  /** Why, for logs and `ca rotate` output. */
  reason: string;
  /** A forced rotation that cannot be done (the caller throws it). */
  error?: string;
  /** Retired anchors that stay in the trust bundle. */
  keep: R[];
  /** Retired anchors whose last leaf has expired. */
  drop: R[];
  /** When `action` is `root`: keep the old root in the bundle until then. */
  retireRootUntil?: number;
}

/**
 * Decides what to rotate now.
 *
 * - Retired anchors stay until their `keepUntil` (the old root's last leaf expiry) and not past
 *   their own notAfter.
 * - The root rotates when forced or when less than `rotateBeforeMs` of it is left; the old root is
 *   kept until `lastIssuedNotAfter` (or now + maxCertTtl when unknown, the longest a leaf can live).
 * - The intermediate rotates when forced, when it has less than `rotateBeforeMs` left, or when the
 *   config wants one and there is none; all need the root key.
 *
 * @example
 * ```ts
 * import { planRotation } from "./rotation.ts";
 * const h = 3_600_000;
 * const plan = planRotation({
 *   now: 0, rootNotAfter: 10 * h, rootKeyAvailable: true, wantIntermediate: false,
 *   retired: [], rotateBeforeMs: 24 * h, maxCertTtlMs: 2 * h,
 * });
 * plan.action; // "root" (10h left, rotate 24h before)
 * plan.retireRootUntil; // 7200000
 * ```
 */
export function planRotation<R extends RetiredTimes>(input: RotationInput<R>): RotationPlan<R> {
  const { now } = input;
  const keep = input.retired.filter((r) => r.keepUntil > now && r.notAfter > now);
  const drop = input.retired.filter((r) => !keep.includes(r));
  const base = { keep, drop };
  const rootPlan = (reason: string): RotationPlan<R> => ({
    ...base,
    action: "root",
    reason,
    retireRootUntil: Math.min(
      input.rootNotAfter,
      input.lastIssuedNotAfter ?? now + input.maxCertTtlMs,
    ),
  });
  const left = (t: number) => t <= now ? "expired" : `${formatDuration(t - now)} left`;

  if (input.force === "root") return rootPlan("rotation requested");
  if (input.force === "intermediate") {
    if (!input.rootKeyAvailable) {
      return {
        ...base,
        action: "none",
        reason: "rotation requested",
        error: "the root's private key is not in the CA file, so no intermediate can be signed",
      };
    }
    return { ...base, action: "intermediate", reason: "rotation requested" };
  }
  if (input.rootNotAfter - now < input.rotateBeforeMs) {
    return rootPlan(`root expires soon (${left(input.rootNotAfter)})`);
  }
  const inter = input.intermediateNotAfter;
  if (inter !== undefined && inter - now < input.rotateBeforeMs) {
    return input.rootKeyAvailable
      ? { ...base, action: "intermediate", reason: `intermediate expires soon (${left(inter)})` }
      : {
        ...base,
        action: "none",
        reason: `intermediate expires soon (${left(inter)})`,
        error: "the root's private key is not in the CA file, so no intermediate can be signed",
      };
  }
  if (input.wantIntermediate && inter === undefined && input.rootKeyAvailable) {
    return { ...base, action: "intermediate", reason: "an intermediate is configured but missing" };
  }
  return { ...base, action: "none", reason: "nothing to rotate" };
}
