/**
 * Reading secrets from files (tokens, AppRole secret IDs): regular files only, never blocking on
 * a FIFO, trimmed, and a warning when others than the agent's user can read the file — the
 * secret may have leaked, and whoever can read it can act as the agent.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { readRegularFile } from "./regular_file.ts";

/** Whether `mode` lets group or others read the file. */
export function readableByOthers(mode: number): boolean {
  return (mode & 0o044) !== 0;
}

/** The warning for a secret file at `mode`; `undefined` when only its owner can read it. */
export function exposedSecretWarning(path: string, mode: number, what: string): string | undefined {
  if (!readableByOthers(mode)) return undefined;
  const m = `0${(mode & 0o777).toString(8)}`;
  return `${what} file "${path}" is readable by group or others (mode ${m}): the secret may ` +
    `have leaked; make it readable by the agent's user only (chmod 600 ${path})`;
}

// One warning per file and mode: secrets are re-read at every login or poll.
const warned = new Set<string>();

/**
 * Reads the secret in `path` (trimmed), warning once on `log` when the file is group or world
 * readable. Throws `Error` naming `what` and the file.
 *
 * @example
 * ```ts ignore
 * const token = await readSecretFile("/etc/camblet/vault-token", "the Vault token", log);
 * ```
 */
export async function readSecretFile(path: string, what: string, log?: Logger): Promise<string> {
  let mode = 0;
  let bytes: Uint8Array;
  try {
    bytes = await readRegularFile(path, { check: (info) => void (mode = info.mode) });
  } catch (e) {
    throw new Error(`Cannot read ${what} from "${path}": ${(e as Error).message}`);
  }
  const warning = exposedSecretWarning(path, mode, what.replace(/^the /, ""));
  const key = `${path}\0${mode}`;
  if (warning && log && !warned.has(key)) {
    warned.add(key);
    log.warn(warning);
  }
  return new TextDecoder().decode(bytes).trim();
}
