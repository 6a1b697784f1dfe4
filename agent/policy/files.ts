/**
 * Finds and reads policy and service files: each path is a file or a directory (not recursive;
 * `*.yaml`, `*.yml`, `*.json` sorted by name; dotfiles and editor leftovers skipped).
 *
 * @module
 */
import type { Problem } from "../errors.ts";
import { isSourceFileName } from "../../plugins/policy_source/_names.ts";
import {
  linkProblem,
  NotRegularFileError,
  readRegularFile,
} from "../../plugins/sdk/regular_file.ts";

/** One file's text. */
export interface SourceFile {
  /** As the user wrote it (`dir/name` for directory entries). */
  path: string;
  text: string;
}

/** Options for {@linkcode readSourceFiles}. */
export interface ReadSourceFilesOptions {
  /** For messages: "policies" or "services". */
  what: string;
  /**
   * Whether the user set the paths (flag, env or config file). A missing explicit path is an
   * error; a missing default path (e.g. /etc/camblet/policies) only a warning.
   */
  explicit: boolean;
}

// The one definition is with the policy sources (plugins may not import the agent).
export { isSourceFileName };

function decode(path: string, bytes: Uint8Array, problems: Problem[]): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const loose = new TextDecoder("utf-8").decode(bytes);
    const at = loose.indexOf("\uFFFD");
    const line = loose.slice(0, Math.max(at, 0)).split("\n").length;
    problems.push({ file: path, line, message: "file is not UTF-8 text" });
    return undefined;
  }
}

/** Lists and reads the files under `paths`, in path order, each directory sorted by name. */
export async function readSourceFiles(
  paths: readonly string[],
  options: ReadSourceFilesOptions,
): Promise<{ files: SourceFile[]; problems: Problem[]; warnings: Problem[] }> {
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const files: SourceFile[] = [];
  const seen = new Set<string>();
  const read = async (path: string) => {
    let real: string;
    let bytes: Uint8Array;
    try {
      real = await Deno.realPath(path).catch(async (e) => {
        throw await linkProblem(path, e);
      });
      if (seen.has(real)) return;
      bytes = await readRegularFile(real);
    } catch (e) {
      if (e instanceof NotRegularFileError) {
        warnings.push({ file: path, message: `skipped: ${e.message.replace(/^"[^"]*" /, "")}` });
        return;
      }
      problems.push({ file: path, message: `cannot read file: ${(e as Error).message}` });
      return;
    }
    seen.add(real);
    const text = decode(path, bytes, problems);
    if (text !== undefined) files.push({ path, text });
  };
  for (const path of paths) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        const p = { file: path, message: `${options.what} path does not exist` };
        (options.explicit ? problems : warnings).push(p);
      } else problems.push({ file: path, message: `cannot read: ${(e as Error).message}` });
      continue;
    }
    if (info.isFile) {
      await read(path);
      continue;
    }
    if (!info.isDirectory) {
      problems.push({ file: path, message: "is neither a file nor a directory" });
      continue;
    }
    const names: string[] = [];
    try {
      for await (const entry of Deno.readDir(path)) {
        if (entry.isDirectory || !isSourceFileName(entry.name)) continue;
        names.push(entry.name);
      }
    } catch (e) {
      problems.push({ file: path, message: `cannot list directory: ${(e as Error).message}` });
      continue;
    }
    names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const dir = path.endsWith("/") ? path : `${path}/`;
    for (const name of names) {
      const full = dir + name;
      // Entries may be symlinks; only regular files (after following) are read, never blocking
      // on a FIFO; a loop or a broken link is a problem.
      await read(full);
    }
  }
  return { files, problems, warnings };
}
