/**
 * Reading the `file` source: each configured path is a file or a directory (sorted by name,
 * optionally recursive; dotfiles, editor leftovers and other extensions skipped, as the agent's
 * `--policies-path` always did). Links to files are followed; linked directories are not walked
 * (no loops). Every unreadable file, non-UTF-8 text and limit is a problem.
 *
 * @module
 */
import { isSourceFileName } from "../_names.ts";
import { ByteBudget, decodeUtf8, formatSize, RefusedContentError } from "../_safety.ts";
import type { SourceLimits } from "../_safety.ts";
import type { DeliveredFile, DeliveredKind, SourceProblem } from "../types.ts";
import { linkProblem, NotRegularFileError, readRegularFile } from "../../sdk/regular_file.ts";

/** What to read. */
export interface FileListing {
  policies: readonly string[];
  services: readonly string[];
  recursive: boolean;
  /** Paths that may be missing (a warning, not a problem). */
  allowMissing: readonly string[];
  limits: SourceLimits;
}

/** What was read. */
export interface FileRead {
  files: DeliveredFile[];
  problems: SourceProblem[];
  warnings: SourceProblem[];
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Lists and reads every file, in path order. */
export async function readFiles(listing: FileListing): Promise<FileRead> {
  const out: FileRead = { files: [], problems: [], warnings: [] };
  const seen = new Set<string>();
  const total = new ByteBudget(listing.limits.maxTotalBytes, "the set of files");
  let count = 0;
  // `inDir`: a directory entry; one that is not a regular file (a FIFO, a device) is skipped
  // with a warning, never opened in a way that could block.
  const read = async (kind: DeliveredKind, path: string, inDir = false) => {
    try {
      let real: string;
      try {
        real = await Deno.realPath(path);
      } catch (e) {
        throw await linkProblem(path, e);
      }
      if (seen.has(real)) return;
      seen.add(real);
      const bytes = await readRegularFile(real, {
        check: ({ size }) => {
          if (size > listing.limits.maxFileBytes) {
            throw new RefusedContentError(
              `file is ${formatSize(size)}, above the limit of ${
                formatSize(listing.limits.maxFileBytes)
              }`,
            );
          }
          if (++count > listing.limits.maxFiles) {
            throw new RefusedContentError(`more than ${listing.limits.maxFiles} files`);
          }
        },
      });
      total.take(bytes.byteLength, path);
      out.files.push({ kind, path, text: decodeUtf8(path, bytes) });
    } catch (e) {
      if (e instanceof NotRegularFileError) {
        const message = `skipped: ${e.message.replace(/^"[^"]*" /, "")}`;
        (inDir ? out.warnings : out.problems).push({ file: path, message });
        return;
      }
      const line = e instanceof RefusedContentError ? e.line : undefined;
      const message = e instanceof RefusedContentError
        ? e.message
        : `cannot read file: ${(e as Error).message}`;
      out.problems.push({ file: path, ...(line !== undefined ? { line } : {}), message });
    }
  };
  const walk = async (kind: DeliveredKind, dir: string, depth: number) => {
    const names: { name: string; isDir: boolean }[] = [];
    try {
      for await (const e of Deno.readDir(dir)) {
        if (e.isDirectory && listing.recursive && !e.name.startsWith(".")) {
          names.push({ name: e.name, isDir: true });
        } else if (!e.isDirectory && isSourceFileName(e.name)) {
          names.push({ name: e.name, isDir: false });
        }
      }
    } catch (e) {
      out.problems.push({ file: dir, message: `cannot list directory: ${(e as Error).message}` });
      return;
    }
    names.sort((a, b) => byName(a.name, b.name));
    const prefix = dir.endsWith("/") ? dir : `${dir}/`;
    for (const { name, isDir } of names) {
      const full = prefix + name;
      if (isDir) {
        if (depth >= 32) out.problems.push({ file: full, message: "directories nest too deep" });
        else await walk(kind, full, depth + 1);
        continue;
      }
      // Links to regular files are read; broken links and loops are problems; a FIFO or
      // device is skipped with a warning.
      await read(kind, full, true);
    }
  };
  const roots: [DeliveredKind, readonly string[]][] = [
    ["policies", listing.policies],
    ["services", listing.services],
  ];
  for (const [kind, paths] of roots) {
    for (const path of paths) {
      let info: Deno.FileInfo;
      try {
        info = await Deno.stat(path);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) {
          const p = { file: path, message: `${kind} path does not exist` };
          (listing.allowMissing.includes(path) ? out.warnings : out.problems).push(p);
        } else out.problems.push({ file: path, message: `cannot read: ${(e as Error).message}` });
        continue;
      }
      if (info.isFile) await read(kind, path);
      else if (info.isDirectory) await walk(kind, path, 0);
      else out.problems.push({ file: path, message: "is neither a file nor a directory" });
    }
  }
  return out;
}
