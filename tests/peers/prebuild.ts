/**
 * Builds every pinned peer that is not cached yet, one after another, with progress on stderr.
 * `deno task peers` runs it (README, `.ci/peers.sh`) before the tests, which never build.
 *
 * Usage: `deno task peers [name...]` (default: every peer)
 *
 * @module
 */

import { join } from "node:path";
import { PEER_BUILDS, PEER_NAMES, type PeerName, PEERS } from "./catalog.ts";
import { buildDir, ensurePeer, peersDir } from "./ensure_peer.ts";

/** Builds the named peers (default: all); returns the number that failed. */
export async function prebuild(only: readonly string[] = []): Promise<number> {
  let failed = 0;
  const unknown = only.filter((n) => !(PEER_NAMES as string[]).includes(n));
  if (unknown.length > 0) {
    throw new TypeError(`Cannot prebuild "${unknown.join(", ")}": known peers are ${PEER_NAMES}`);
  }
  // In catalog order (small builds first); "bao" is the same binary as "vault".
  const names: PeerName[] = only.length > 0
    ? only as PeerName[]
    : PEER_BUILDS.flatMap((b) => PEER_NAMES.filter((n) => PEERS[n] === b && n !== "bao"));
  for (const name of names) {
    const build = PEERS[name];
    const started = Date.now();
    try {
      const path = await ensurePeer(name, { build: true });
      const record = await Deno.readTextFile(join(buildDir(build), "BUILD.json"))
        .then((t) => JSON.parse(t) as { seconds?: number }).catch(() => ({ seconds: undefined }));
      const took = Math.round((Date.now() - started) / 1000);
      const how = took > 1 ? `built in ${took}s` : `cached (built in ${record.seconds ?? "?"}s)`;
      console.error(`peers: ${name} ${build.version}: ${how}: ${path}`);
    } catch (error) {
      failed++;
      console.error(
        `peers: ${name} ${build.version}: ${(error as Error).message}`,
      );
    }
  }
  console.error(`peers: cache ${peersDir()}`);
  return failed;
}

if (import.meta.main) {
  const failed = await prebuild(Deno.args);
  if (failed > 0) Deno.exitCode = 1;
}
