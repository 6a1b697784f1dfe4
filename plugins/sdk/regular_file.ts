/**
 * Reading a file only when it is a regular one. A FIFO (or a device) at a path a watcher reads
 * would block `open()` forever, and with it every later read queued behind it; so the file is
 * opened non-blocking, checked with fstat on the open descriptor (no race with a rename), and only
 * then read.
 *
 * @module
 */
import { constants, open } from "node:fs/promises";

/** The path is there but is not a regular file. */
export class NotRegularFileError extends Error {
  override name = "NotRegularFileError";
}

/** Options for {@linkcode readRegularFile}. */
export interface ReadRegularOptions {
  /** Called with the open file's size before reading; throw to refuse it. */
  check?: (info: { size: number; mode: number; uid: number }) => void;
}

function kindOf(st: { isFIFO(): boolean; isDirectory(): boolean; isSocket(): boolean }): string {
  if (st.isFIFO()) return "a FIFO";
  if (st.isDirectory()) return "a directory";
  if (st.isSocket()) return "a socket";
  return "a device or special file";
}

/**
 * Reads `path` (links followed) when it is a regular file; throws
 * {@linkcode NotRegularFileError} without blocking when it is a FIFO, device or socket.
 *
 * @example
 * ```ts ignore
 * const bytes = await readRegularFile("/etc/camblet/policies/a.yaml");
 * ```
 */
export async function readRegularFile(
  path: string,
  options: ReadRegularOptions = {},
): Promise<Uint8Array> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw fsError(e, path);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      throw new NotRegularFileError(`"${path}" is ${kindOf(st)}, not a regular file`);
    }
    options.check?.({ size: st.size, mode: st.mode, uid: st.uid });
    return new Uint8Array(await fh.readFile());
  } finally {
    await fh.close();
  }
}

/** Reads a regular file as UTF-8 text (see {@linkcode readRegularFile}). */
export async function readRegularTextFile(
  path: string,
  options: ReadRegularOptions = {},
): Promise<string> {
  return new TextDecoder().decode(await readRegularFile(path, options));
}

/** Why `path` cannot be resolved: a link loop or a broken link, named as such. */
export async function linkProblem(path: string, e: unknown): Promise<Error> {
  if (e instanceof Deno.errors.FilesystemLoop || /os error 40\b/.test(String(e))) {
    return new Error("symbolic link loop (too many levels of symbolic links)");
  }
  if (e instanceof Deno.errors.NotFound) {
    const target = await Deno.readLink(path).catch(() => undefined);
    return new Error(
      target === undefined ? "it does not exist" : `broken link: "${target}" does not exist`,
    );
  }
  return e as Error;
}

// node:fs errors carry `code`; callers test Deno's classes (NotFound, PermissionDenied).
function fsError(e: unknown, path: string): Error {
  const code = (e as { code?: string }).code;
  const msg = (e as Error).message ?? String(e);
  if (code === "ENOENT") return new Deno.errors.NotFound(msg);
  if (code === "EACCES" || code === "EPERM") return new Deno.errors.PermissionDenied(msg);
  if (code === "ELOOP") {
    return new Deno.errors.FilesystemLoop(`"${path}": too many levels of symbolic links (a loop)`);
  }
  return e instanceof Error ? e : new Error(msg);
}
