/**
 * Checksums of external plugin executables, checked before every start.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";

/** The checksum of the executable is not the configured one. */
export class ChecksumMismatchError extends Error {
  override name = "ChecksumMismatchError";
}

/** Hex SHA-256 of a file's bytes. */
export async function sha256File(path: string): Promise<string> {
  const bytes = await Deno.readFile(path);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Checks `command` against the configured hex `sha256`; without one, warns and lets it start.
 * Throws {@linkcode ChecksumMismatchError} on a mismatch, `Error` when the file cannot be read.
 */
export async function verifyExecutable(
  command: string,
  sha256: string | undefined,
  log: Logger,
): Promise<void> {
  if (sha256 === undefined) {
    log.warn("No sha256 configured for plugin executable; starting it unchecked", { command });
    return;
  }
  let actual: string;
  try {
    actual = await sha256File(command);
  } catch (e) {
    throw new Error(`Cannot read plugin executable "${command}": ${(e as Error).message}`);
  }
  if (actual !== sha256.toLowerCase()) {
    throw new ChecksumMismatchError(
      `Cannot start plugin "${command}": its sha256 is ${actual}, the config expects ${sha256}`,
    );
  }
}
