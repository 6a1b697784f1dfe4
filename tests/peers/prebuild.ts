/**
 * Builds every pinned peer that is not cached yet, one after another, with progress on stderr.
 * `.ci/peers.sh` runs it before the tests so the build shows as its own CI step.
 *
 * Usage: `deno run -A tests/peers/prebuild.ts`
 *
 * @module
 */

import { join } from "node:path";
import { binaryName, PEER_NAMES, PEERS } from "./catalog.ts";
import { buildDir, ensurePeer, peersDir } from "./ensure_peer.ts";

/** Builds all peers; returns the number that failed. */
export async function prebuildAll(): Promise<number> {
  let failed = 0;
  for (const name of PEER_NAMES) {
    if (name === "bao") continue; // the same build as "vault"
    const build = PEERS[name];
    const started = Date.now();
    try {
      const path = await ensurePeer(name);
      const record = await Deno.readTextFile(join(buildDir(build), "BUILD.json"))
        .then((t) => JSON.parse(t) as { seconds?: number }).catch(() => ({ seconds: undefined }));
      const took = Math.round((Date.now() - started) / 1000);
      const how = took > 1 ? `built in ${took}s` : `cached (built in ${record.seconds ?? "?"}s)`;
      console.error(`peers: ${name} ${build.version}: ${how}: ${path}`);
    } catch (error) {
      failed++;
      console.error(
        `peers: ${name} ${build.version} (${binaryName(name)}): ${(error as Error).message}`,
      );
    }
  }
  console.error(`peers: cache ${peersDir()}`);
  return failed;
}

if (import.meta.main) {
  const failed = await prebuildAll();
  if (failed > 0) Deno.exitCode = 1;
}
