/**
 * The real `opa` CLI for tests: compile Rego to a wasm bundle with `opa build -t wasm` and run
 * `opa test`.
 *
 * @module
 */

import { join } from "node:path";
import { ensurePeer } from "./ensure_peer.ts";
import { run, type RunResult } from "./_process.ts";

/** Options for {@linkcode opaBuildBundle}. */
export interface OpaBuildOptions {
  /** Entrypoints such as `camblet/issuance/allow` (at least one). */
  entrypoints: string[];
  /** Bundle revision written to `.manifest`. */
  revision?: string;
  /** File patterns left out of the bundle (default: `*_test.rego`). */
  ignore?: string[];
}

/**
 * Runs `opa build -t wasm` over `regoDir` and returns the bundle (tar.gz with `/policy.wasm`,
 * `/data.json`, `/.manifest` and the Rego sources).
 */
export async function opaBuildBundle(
  regoDir: string,
  options: OpaBuildOptions,
): Promise<Uint8Array> {
  if (options.entrypoints.length === 0) {
    throw new TypeError(`Cannot build ${regoDir} to wasm: no entrypoint given`);
  }
  const opa = await ensurePeer("opa");
  const tmp = await Deno.makeTempDir({ prefix: "camblet-opa-" });
  try {
    const out = join(tmp, "bundle.tar.gz");
    const args = ["build", "-t", "wasm", "-o", out];
    for (const e of options.entrypoints) args.push("-e", e);
    for (const i of options.ignore ?? ["*_test.rego"]) args.push("--ignore", i);
    if (options.revision !== undefined) args.push("--revision", options.revision);
    await run(opa, [...args, regoDir]);
    return await Deno.readFile(out);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/**
 * Compiles the Rego in `regoDir` with `opa build -t wasm -e <entrypoint>` and returns
 * `policy.wasm` from the bundle, ready for `@open-policy-agent/opa-wasm`'s `loadPolicy`.
 *
 * @example
 * ```ts ignore
 * const wasm = await opaBuildWasm("policies/rego", "camblet/issuance/allow");
 * ```
 */
export async function opaBuildWasm(regoDir: string, entrypoint: string): Promise<Uint8Array> {
  const bundle = await opaBuildBundle(regoDir, { entrypoints: [entrypoint] });
  const tmp = await Deno.makeTempDir({ prefix: "camblet-opa-" });
  try {
    const tgz = join(tmp, "bundle.tar.gz");
    await Deno.writeFile(tgz, bundle);
    await run("tar", ["-xzf", tgz, "-C", tmp, "/policy.wasm"]);
    return await Deno.readFile(join(tmp, "policy.wasm"));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Runs `opa test -v <paths>`; a failing test is a non-zero `code`, not an exception. */
export async function opaTest(paths: string[]): Promise<RunResult> {
  const opa = await ensurePeer("opa");
  return await run(opa, ["test", "-v", ...paths], { check: false });
}
