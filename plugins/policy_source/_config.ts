/**
 * Config pieces shared by the policy source plugins: polling and the secrets that may be given
 * inline or as a file.
 *
 * @module
 */
import { z } from "zod";
import type { Logger } from "@logtape/logtape";
import { durationMs } from "../sdk/config.ts";
import { readSecretFile as readSecretFileChecked } from "../sdk/secret_file.ts";

/** `pollInterval`, `jitter`, `retryMin`, `timeout` (defaults 60 s, 0.1, 1 s, 60 s). */
export const pollFields = {
  /** Time between checks. */
  pollInterval: durationMs.default(60_000),
  /** Fraction of the interval added or removed at random (0..1). */
  jitter: z.number().min(0).max(1).default(0.1),
  /** First retry after a failure; doubles up to `pollInterval`. */
  retryMin: durationMs.default(1000),
  /** Longest a single check may take. */
  timeout: durationMs.default(60_000),
};

/** An absolute or relative path, not empty. */
export const pathString = z.string().min(1, "must not be empty");

/** Reads a bearer token file (trimmed), warning once on `log` when others can read it. */
export function readTokenFile(path: string, log: Logger): Promise<string> {
  return readSecretFileChecked(path, "the token", log);
}

/** Reads a file that is not secret (a CA, a public key), trimmed; throws naming the file. */
export async function readSecretFile(path: string, what: string): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch (e) {
    throw new Error(`Cannot read ${what} file "${path}": ${(e as Error).message}`);
  }
}

/** `AbortSignal.any` of `signal` and a timeout, with the reason named. */
export function withTimeout(
  signal: AbortSignal | undefined,
  ms: number,
): { signal: AbortSignal; timedOut: () => boolean; clear: () => void } {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new Error(`no answer within ${ms} ms`)), ms);
  const combined = signal ? AbortSignal.any([signal, ctl.signal]) : ctl.signal;
  return {
    signal: combined,
    timedOut: () => ctl.signal.aborted,
    clear: () => clearTimeout(timer),
  };
}
