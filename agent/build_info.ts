/**
 * The build stamp of a packaged agent: commit, build date and the form it ships in. The packaging
 * build (packaging/build.ts) puts one line assigning `globalThis.__CAMBLET_AGENT_BUILD__` at the
 * top of the bundle; run from source there is none and the stamp says so.
 *
 * @module
 */
import { VERSION, versionLine } from "./version.ts";

/** The global the packaging build assigns. */
export const BUILD_GLOBAL = "__CAMBLET_AGENT_BUILD__";

/** What a build records about itself. */
export interface BuildInfo {
  /** Git commit the build was made from (`+dirty` when the tree had changes). */
  commit: string;
  /** ISO 8601 build time. */
  date: string;
  /** How the program ships, e.g. `bundle + deno runtime from npm @deno/linux-x64-glibc@2.9.6`. */
  form: string;
}

const SOURCE: BuildInfo = { commit: "unknown", date: "unknown", form: "source (deno run main.ts)" };

/**
 * The stamp found in `scope` (default: `globalThis`), or the source-checkout defaults. A malformed
 * stamp is reported as such rather than trusted.
 *
 * @example
 * ```ts
 * import { buildInfo } from "./build_info.ts";
 * buildInfo({}).form; // "source (deno run main.ts)"
 * ```
 */
export function buildInfo(scope: object = globalThis): BuildInfo {
  const raw = (scope as Record<string, unknown>)[BUILD_GLOBAL];
  if (raw === undefined) return SOURCE;
  const r = raw as Partial<Record<keyof BuildInfo, unknown>>;
  const field = (k: keyof BuildInfo) =>
    typeof r[k] === "string" && r[k] !== "" ? r[k] : `invalid (${BUILD_GLOBAL}.${k})`;
  return { commit: field("commit"), date: field("date"), form: field("form") };
}

/**
 * `camblet-agent version`: the version line, then commit, build date, form, Deno and target.
 *
 * @example
 * ```ts
 * import { versionReport } from "./build_info.ts";
 * versionReport({}).split("\n")[0]!.startsWith("camblet-agent "); // true
 * ```
 */
export function versionReport(scope: object = globalThis): string {
  const b = buildInfo(scope);
  return [
    versionLine(),
    `version:  ${VERSION}`,
    `commit:   ${b.commit}`,
    `built:    ${b.date}`,
    `form:     ${b.form}`,
    `deno:     ${Deno.version.deno}`,
    `target:   ${Deno.build.target}`,
  ].join("\n");
}
