/**
 * The Deno runtime the install tree carries: the `deno` binary of the npm packages
 * `@deno/linux-{x64,arm64}-glibc` (the standalone runtime `deno compile` downloads is not
 * reachable here; npm is). Fetched with `npm pack`, cached by version, and accepted only when the
 * tarball's integrity and the binary's sha256 match packaging/deno-runtime.json.
 *
 * @module
 */
import { join } from "node:path";
import { homedir } from "node:os";
import { exec, sha256File } from "./_exec.ts";
import manifest from "./deno-runtime.json" with { type: "json" };

/** An architecture the packages are built for. */
export type Arch = keyof typeof manifest.targets;
/** Every architecture, in build order. */
export const ARCHES = Object.keys(manifest.targets) as Arch[];
/** The pinned Deno version. */
export const DENO_VERSION: string = manifest.version;

/** What packaging/deno-runtime.json records for `arch`. */
export function runtimeTarget(arch: Arch): (typeof manifest.targets)[Arch] {
  const t = manifest.targets[arch];
  if (t === undefined) throw new RangeError(`Cannot package for architecture "${arch}"`);
  return t;
}

function cacheDir(): string {
  const home = Deno.env.get("HOME") ?? homedir();
  return join(home, ".cache", "camblet-agent", "deno-runtime");
}

async function integrityOf(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-512", await Deno.readFile(path));
  return "sha512-" + btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/**
 * Returns the path of the verified `deno` binary for `arch`, fetching its npm package first when
 * it is not cached. Throws naming the package and both digests when they differ from the record.
 */
export async function ensureDenoRuntime(arch: Arch): Promise<string> {
  const t = runtimeTarget(arch);
  const dir = join(cacheDir(), `${t.package.replace("/", "+")}@${DENO_VERSION}`);
  const bin = join(dir, "deno");
  const spec = `${t.package}@${DENO_VERSION}`;
  try {
    if ((await sha256File(bin)) === t.sha256) return bin;
  } catch { /* not cached yet */ }
  await Deno.mkdir(cacheDir(), { recursive: true });
  const work = await Deno.makeTempDir({ dir: cacheDir(), prefix: ".fetch-" });
  try {
    const name = (await exec("npm", ["pack", "--silent", spec, "--pack-destination", work]))
      .trim().split("\n").at(-1)!;
    const tgz = join(work, name);
    const integrity = await integrityOf(tgz);
    if (integrity !== t.integrity) {
      throw new Error(
        `Cannot use ${spec}: npm tarball integrity ${integrity} is not the recorded ${t.integrity} (packaging/deno-runtime.json)`,
      );
    }
    await exec("tar", ["-xzf", tgz, "-C", work, "package/deno"]);
    const got = await sha256File(join(work, "package", "deno"));
    if (got !== t.sha256) {
      throw new Error(
        `Cannot use ${spec}: package/deno has sha256 ${got}, not the recorded ${t.sha256}`,
      );
    }
    await Deno.mkdir(dir, { recursive: true });
    await Deno.chmod(join(work, "package", "deno"), 0o755);
    await Deno.rename(join(work, "package", "deno"), bin);
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  return bin;
}
