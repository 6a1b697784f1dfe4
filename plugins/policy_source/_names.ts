/**
 * Which file names are policy or service files. The agent's file listing (agent/policy/files.ts)
 * re-exports this one definition, so that a directory, a repository and a bundle can never
 * disagree on what `web.yaml~` or `.web.yaml.swp` is.
 *
 * @module
 */
const EXTENSIONS = [".yaml", ".yml", ".json"];

/**
 * Whether a directory entry is a source file: a known extension, not hidden (`.x.swp`, `.#x`),
 * not an editor backup (`x~`) or auto-save (`#x#`).
 *
 * @example
 * ```ts
 * import { isSourceFileName } from "./_names.ts";
 * isSourceFileName("web.yaml"); // true
 * isSourceFileName(".web.yaml.swp"); // false
 * ```
 */
export function isSourceFileName(name: string): boolean {
  if (name.startsWith(".") || name.endsWith("~") || name.startsWith("#")) return false;
  const lower = name.toLowerCase();
  return EXTENSIONS.some((e) => lower.endsWith(e) && lower.length > e.length);
}
