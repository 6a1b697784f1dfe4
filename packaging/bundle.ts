/**
 * The stamped bundle every packaged form runs: `deno bundle` of main.ts with one first line
 * assigning the build stamp (agent/build_info.ts reads it for `camblet-agent version`) and one
 * embedding each worker's own bundle, compressed (driver/worker_code.ts: a worker then holds only
 * its code, and the main isolate, which keeps the bundle's source, 0.4 instead of 1.9 MB of it).
 *
 *   deno run -A packaging/bundle.ts [out]   (`deno task bundle`: dist/camblet-agent.js, unstamped)
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BUILD_GLOBAL, type BuildInfo } from "../agent/build_info.ts";
import { embedWorkersLine } from "../driver/worker_code.ts";
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
 * The workers, each bundled from its entry. Their modules load only here (the tests import ROOT
 * from this file). The kernel worker reads the device itself (driver/device_file.ts): the agent
 * starts no reader, and no worker starts another.
 */
async function workers(): Promise<{ name: string; entry: string }[]> {
  const [{ KERNEL_WORKER_NAME }, { POLICY_WORKER_NAME }] = await Promise.all([
    import("../driver/link_protocol.ts"),
    import("../agent/sources/compile_worker.ts"),
  ]);
  return [
    { name: KERNEL_WORKER_NAME, entry: "agent/daemon/kernel_worker.ts" },
    { name: POLICY_WORKER_NAME, entry: "agent/sources/compile_worker.ts" },
  ];
}

/** `deno bundle` of `entry` (offline: npm packages come from Deno's cache); returns the code. */
async function denoBundle(entry: string, tmp: string): Promise<string> {
  await exec(Deno.execPath(), [
    "bundle",
    "--quiet",
    "--platform=deno",
    `--config=${join(ROOT, "deno.json")}`,
    join(ROOT, entry),
    "-o",
    tmp,
  ], { cwd: ROOT });
  try {
    return asciiOnly(await Deno.readTextFile(tmp));
  } finally {
    await Deno.remove(tmp);
  }
}

/**
 * `code` with every non-ASCII character written `\uXXXX`. V8 keeps a source with one such
 * character (an arrow in a comment) as UTF-16: the bundle's 5.4 MB took 10.9 MB of the main
 * isolate's heap. The escape means the same in strings, templates, regular expressions and
 * identifiers, but not in a `String.raw` template, whose raw text would keep the backslash: one
 * holding non-ASCII text is refused, naming it, rather than bundled with another value.
 */
export function asciiOnly(code: string): string {
  const raw = /String\.raw`[^`]*[\u0080-\uffff][^`]*`/.exec(code);
  if (raw) {
    throw new Error(
      `Cannot bundle: a String.raw template holds non-ASCII text, which the ASCII-only bundle ` +
        `would change: ${raw[0].slice(0, 120)} (write it as a plain string)`,
    );
  }
  return code.replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** Puts `lines` right after the shebang (which must stay the first line), or first. */
function prepend(code: string, lines: string): string {
  const at = code.startsWith("#!") ? code.indexOf("\n") + 1 : 0;
  return code.slice(0, at) + lines + code.slice(at);
}

/**
 * The bundle's code, `stamp` (a line or "") first: main.ts with every worker's own bundle, or,
 * with `embedWorkers` false, without (its workers then run the bundle itself).
 */
async function bundleCode(out: string, stamp: string, embedWorkers = true): Promise<string> {
  const tmp = `${out}.tmp.js`;
  if (!embedWorkers) return prepend(await denoBundle("main.ts", tmp), stamp);
  const codes: Record<string, string> = Object.create(null);
  for (const w of await workers()) codes[w.name] = await denoBundle(w.entry, tmp);
  return prepend(await denoBundle("main.ts", tmp), stamp + embedWorkersLine(codes));
}

/**
 * Bundles main.ts into `out` and stamps it with `form`. Returns the stamp. `embedWorkers: false`
 * for `deno compile`, whose binaries cannot start `blob:` workers (driver/worker_code.ts).
 */
export async function bundle(
  out: string,
  form: string,
  { embedWorkers = true }: { embedWorkers?: boolean } = {},
): Promise<BuildInfo> {
  await Deno.mkdir(dirname(out), { recursive: true });
  const info: BuildInfo = {
    commit: await buildCommit(),
    date: buildDate().toISOString(),
    form,
  };
  await Deno.writeTextFile(out, await bundleCode(out, stampLine(info), embedWorkers));
  return info;
}

if (import.meta.main) {
  // `deno task bundle`: unstamped (`version` then reports a source checkout), executable.
  const out = Deno.args[0] ?? join(ROOT, "dist", "camblet-agent.js");
  try {
    await Deno.mkdir(dirname(out), { recursive: true });
    await Deno.writeTextFile(out, await bundleCode(out, ""), { mode: 0o755 });
    await Deno.chmod(out, 0o755);
    console.log(out);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
