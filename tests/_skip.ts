/**
 * Skips that say why. `Deno.test({ ignore: true })` prints only "ignored", so a test that needs
 * root, a daemon or a built peer uses `ignore: skip(reason)`: the reason is printed once per file
 * as `SKIP <file>: <reason>`, and a falsy reason runs the test.
 *
 * @example
 * ```ts ignore
 * import { skip } from "../_skip.ts";
 * Deno.test({ name: "needs root", ignore: skip(Deno.uid() !== 0 && "needs root"), fn() {} });
 * ```
 *
 * @module
 */

const printed = new Set<string>();

/** The test file that called {@linkcode skip}, relative to the repository root. */
function caller(): string {
  const root = new URL("../", import.meta.url).href;
  const self = import.meta.url;
  for (const line of (new Error().stack ?? "").split("\n")) {
    const m = /(file:\/\/[^\s)]+?):\d+:\d+\)?$/.exec(line.trim());
    if (m && m[1] !== self) return m[1]!.startsWith(root) ? m[1]!.slice(root.length) : m[1]!;
  }
  return "?";
}

/**
 * Returns whether to skip: true when `reason` is a non-empty string, which is then printed to
 * stderr once per file and reason. `false`, `undefined`, `null` and `""` run the test.
 */
export function skip(reason: string | false | undefined | null): boolean {
  if (!reason) return false;
  const line = `SKIP ${caller()}: ${reason}`;
  if (!printed.has(line)) {
    printed.add(line);
    console.error(line);
  }
  return true;
}
