/**
 * Builds the real peer binaries from their Go modules and caches them by version in
 * `${CAMBLET_PEERS_DIR:-$HOME/.cache/camblet-agent/peers}/<key>-<version>/`. A file lock makes
 * parallel processes wait for one build instead of running two. Tests never build: `deno task
 * peers` does (minutes per peer), and a test whose peer is missing skips with
 * {@linkcode peerMissing}'s reason, or fails naming the task.
 *
 * @module
 */

import { join } from "node:path";
import { homedir } from "node:os";
import { binaryName, type PeerBuild, type PeerName, PEERS } from "./catalog.ts";
import { runGo } from "./_go.ts";

/** A peer could not be built; `message` carries the failing command and its last output. */
export class PeerBuildError extends Error {
  override name = "PeerBuildError";
}

/** Where built peers live (the `CAMBLET_PEERS_DIR` variable overrides the default). */
export function peersDir(): string {
  const home = Deno.env.get("HOME") ?? homedir();
  return Deno.env.get("CAMBLET_PEERS_DIR") ?? join(home, ".cache", "camblet-agent", "peers");
}

/** The cache directory of one build. */
export function buildDir(build: PeerBuild): string {
  return join(peersDir(), `${build.key}-${build.version}`);
}

/** Where a peer's binary is once built (it may not exist yet). */
export function peerPath(name: PeerName): string {
  const build = PEERS[name];
  if (build === undefined) throw new TypeError(`Cannot find peer: unknown name "${name}"`);
  return join(buildDir(build), binaryName(name));
}

/** Options for {@linkcode ensurePeer}. */
export interface EnsurePeerOptions {
  /** Progress sink (default: stderr). */
  log?: (line: string) => void;
  /**
   * Build a missing peer (default: only when `CAMBLET_PEERS_BUILD=1`; `deno task peers` builds).
   * Otherwise a missing peer is a {@linkcode PeerBuildError} naming the task.
   */
  build?: boolean;
}

/** The command that builds every peer. */
export const PEERS_TASK = "deno task peers";

/**
 * Why a test that needs `names` must skip, or undefined when every one is built. Never builds.
 *
 * @example
 * ```ts ignore
 * import { skip } from "../_skip.ts";
 * Deno.test({ name: "vault", ignore: skip(peerMissing("vault")), async fn() {} });
 * ```
 */
export function peerMissing(...names: PeerName[]): string | undefined {
  const missing = names.filter((n) => !isFileSync(peerPath(n)));
  if (missing.length === 0) return undefined;
  const builds = [...new Set(missing.map((n) => `${PEERS[n].key} ${PEERS[n].version}`))];
  return `needs ${builds.join(", ")}, not built in ${peersDir()}: run \`${PEERS_TASK}\` first`;
}

// One build per process at a time; other processes wait on the file lock.
const builds = new Map<string, Promise<void>>();

/**
 * Returns the absolute path of a peer binary, building it first if it is not cached.
 *
 * @example
 * ```ts ignore
 * const opa = await ensurePeer("opa");
 * ```
 */
export async function ensurePeer(name: PeerName, options: EnsurePeerOptions = {}): Promise<string> {
  const path = peerPath(name);
  if (await isFile(path)) return path;
  const build = PEERS[name];
  const key = `${build.key}-${build.version}`;
  if (!(options.build ?? Deno.env.get("CAMBLET_PEERS_BUILD") === "1")) {
    throw new PeerBuildError(
      `Cannot find ${name}: ${build.key} ${build.version} is not built (no file at ${path}); ` +
        `run \`${PEERS_TASK}\` first`,
    );
  }
  let pending = builds.get(key);
  if (pending === undefined) {
    pending = buildLocked(build, options.log ?? logToStderr);
    builds.set(key, pending); // a failure stays cached: do not retry a long failing build
  }
  await pending;
  if (!(await isFile(path))) {
    throw new PeerBuildError(`Cannot find ${name} after building ${key}: no file at ${path}`);
  }
  return path;
}

/** The outcome of {@linkcode tryEnsurePeer}. */
export type PeerResult = { ok: true; path: string } | { ok: false; error: string };

/** Like {@linkcode ensurePeer}, but reports a build failure instead of throwing it. */
export async function tryEnsurePeer(
  name: PeerName,
  options: EnsurePeerOptions = {},
): Promise<PeerResult> {
  try {
    return { ok: true, path: await ensurePeer(name, options) };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, error: message };
  }
}

async function buildLocked(build: PeerBuild, log: (line: string) => void): Promise<void> {
  const root = peersDir();
  const dir = buildDir(build);
  const label = `${build.key} ${build.version}`;
  await Deno.mkdir(root, { recursive: true });
  const lock = await Deno.open(join(root, `.${build.key}-${build.version}.lock`), {
    create: true,
    write: true,
  });
  try {
    log(`peers: ${label} is not cached in ${dir}; building (or waiting for a build in progress)`);
    await lock.lock(true);
    if (await isDir(dir)) return; // another process finished it while we waited
    const partial = `${dir}.partial-${Deno.pid}`;
    await Deno.remove(partial, { recursive: true }).catch(() => {});
    await Deno.mkdir(partial, { recursive: true });
    try {
      const started = Date.now();
      const { commands, goVersion } = await runGo(build, partial, dir, log);
      const seconds = Math.round((Date.now() - started) / 1000);
      const record = {
        module: build.module,
        version: build.version,
        strategy: build.strategy,
        commands,
        goVersion,
        seconds,
        builtAt: new Date().toISOString(),
        note: build.note,
      };
      await Deno.writeTextFile(join(partial, "BUILD.json"), JSON.stringify(record, null, 2) + "\n");
      await Deno.rename(partial, dir); // the directory appears only when complete
      log(`peers: built ${label} in ${seconds}s → ${dir}`);
    } catch (error) {
      await Deno.remove(partial, { recursive: true }).catch(() => {});
      const message = error instanceof Error ? error.message : String(error);
      throw new PeerBuildError(`Cannot build ${label} (${build.module}): ${message}`, {
        cause: error,
      });
    }
  } finally {
    lock.close(); // closing releases the lock
  }
}

function logToStderr(line: string): void {
  console.error(line);
}

function isFileSync(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}
