/**
 * CI's packaging preparation, run before the test suite so its parallel tests find everything
 * cached instead of building it in parallel: nfpm, helm and k8s_decode from the Go module proxy,
 * the Deno runtimes from npm and the Debian root tarball (debootstrap). Each is cached by version
 * (the root by month); a warm run takes a second or two.
 *
 * @module
 */
import { ensureGoTool, GO_TOOLS, type ToolName } from "../../packaging/go_tool.ts";
import { ARCHES, ensureDenoRuntime } from "../../packaging/deno_runtime.ts";
import { ensureRootTarball } from "./debian_root.ts";

/** Prepares every cached input; throws naming the first that cannot be had. */
export async function preparePackaging(log: (l: string) => void = console.error): Promise<void> {
  const started = Date.now();
  for (const name of Object.keys(GO_TOOLS) as ToolName[]) {
    log(`packaging: ${name}: ${await ensureGoTool(name, log)}`);
  }
  for (const arch of ARCHES) {
    log(`packaging: deno runtime ${arch}: ${await ensureDenoRuntime(arch)}`);
  }
  log(`packaging: Debian root: ${await ensureRootTarball(log)}`);
  log(`packaging: prepared in ${Math.round((Date.now() - started) / 1000)} s`);
}

if (import.meta.main) {
  try {
    await preparePackaging();
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
