/**
 * The stamped bundle every packaged form runs: `deno bundle` of main.ts with one first line
 * assigning the build stamp (agent/build_info.ts reads it for `camblet-agent version`).
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BUILD_GLOBAL, type BuildInfo } from "../agent/build_info.ts";
import { exec } from "./_exec.ts";

/** The repository root. */
export const ROOT: string = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The commit being built: short hash, `+dirty` when tracked files differ from it. */
export async function buildCommit(): Promise<string> {
  try {
    const hash = (await exec("git", ["rev-parse", "--short=12", "HEAD"], { cwd: ROOT })).trim();
    const dirty = (await exec("git", ["status", "--porcelain", "--untracked-files=no"], {
      cwd: ROOT,
    })).trim();
    return dirty === "" ? hash : `${hash}+dirty`;
  } catch {
    return "unknown (not a git checkout)";
  }
}

/** The build time: `SOURCE_DATE_EPOCH` when set (reproducible builds), else now. */
export function buildDate(): Date {
  const epoch = Deno.env.get("SOURCE_DATE_EPOCH");
  return epoch ? new Date(Number(epoch) * 1000) : new Date();
}

/** The line the bundle starts with. */
export function stampLine(info: BuildInfo): string {
  return `globalThis.${BUILD_GLOBAL} = ${JSON.stringify(info)};\n`;
}

/**
 * Bundles main.ts into `out` (offline: npm packages come from Deno's cache) and stamps it with
 * `form`. Returns the stamp.
 */
export async function bundle(out: string, form: string): Promise<BuildInfo> {
  await Deno.mkdir(dirname(out), { recursive: true });
  const tmp = `${out}.tmp.js`;
  await exec(Deno.execPath(), [
    "bundle",
    "--quiet",
    "--platform=deno",
    `--config=${join(ROOT, "deno.json")}`,
    join(ROOT, "main.ts"),
    "-o",
    tmp,
  ], { cwd: ROOT });
  const info: BuildInfo = {
    commit: await buildCommit(),
    date: buildDate().toISOString(),
    form,
  };
  const code = await Deno.readTextFile(tmp);
  // A shebang must stay the first line.
  const at = code.startsWith("#!") ? code.indexOf("\n") + 1 : 0;
  await Deno.writeTextFile(out, code.slice(0, at) + stampLine(info) + code.slice(at));
  await Deno.remove(tmp);
  return info;
}
