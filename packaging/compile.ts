/**
 * `deno task compile`: single-file executables for x86_64 and aarch64 Linux, compiled from the same
 * stamped bundle the packages carry (packaging/bundle.ts), so `camblet-agent version` of a compiled
 * binary names its commit and build date too. `deno compile` downloads Deno's standalone runtime
 * (denort) for each target, so this needs a machine with internet access; offline, use
 * `deno task package` (the install tree carries the runtime from npm).
 *
 * Usage: deno run -A packaging/compile.ts [--target x86_64,aarch64]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { bundle, ROOT } from "./bundle.ts";
import { type Arch, ARCHES, DENO_VERSION, runtimeTarget } from "./deno_runtime.ts";
import { exec } from "./_exec.ts";

/** Compiles the executable of `arch` into dist/; returns its path. */
export async function compile(arch: Arch, js: string): Promise<string> {
  const t = runtimeTarget(arch);
  const out = join(ROOT, "dist", `camblet-agent-${arch}-linux`);
  try {
    await exec(Deno.execPath(), [
      "compile",
      "--quiet",
      "-A",
      "--no-config",
      "--v8-flags=--max-semi-space-size=2,--optimize-for-size", // README "Development", "Memory"
      "--target",
      t.target,
      "-o",
      out,
      js,
    ]);
  } catch (e) {
    throw new Error(
      `Cannot compile camblet-agent for ${t.target} (deno compile fetches Deno's standalone runtime ` +
        `${DENO_VERSION} for it, which needs internet access; offline, \`deno task package\` ` +
        `builds the install tree with the runtime from npm): ${(e as Error).message}`,
    );
  }
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { target: { type: "string" } } });
  const arches = (values.target?.split(",") ?? ARCHES) as Arch[];
  try {
    const js = join(ROOT, "dist", "compile", "camblet-agent.js");
    // Its workers run the bundle itself: a compiled binary cannot start them from blob: URLs.
    await bundle(js, `deno compile (standalone runtime ${DENO_VERSION})`, { embedWorkers: false });
    for (const arch of arches) console.log(await compile(arch, js));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
