/**
 * Helpers for tests of CA plugins: a plugin context, the example plugins' executables (the Go one
 * built with `go build` into `.cache/`), and loading an external CA through the real loader.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { Clock, PluginContext, PluginKind } from "../../plugins/types.ts";
import { systemClock } from "../../plugins/types.ts";
import { sha256File } from "../../plugins/_sha256.ts";
import { externalPlugin } from "../../plugins/external.ts";
import { type LoadedPlugins, loadPlugins } from "../../plugins/loader.ts";
import type { CertificateAuthority } from "../../plugins/ca/types.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** A plugin context for tests (trust domain of the capture: `acme.test`). */
export function testContext(
  kind: PluginKind,
  name: string,
  clock: Clock = systemClock,
): PluginContext {
  return {
    log: getLogger(["camblet", "test", "plugin", kind, name]),
    clock,
    trustDomain: "acme.test",
    signal: new AbortController().signal,
    agentVersion: "test",
  };
}

/** The TypeScript example CA (an executable script). */
export const TS_CA_PLUGIN = `${ROOT}examples/plugins/ts-ca/main.ts`;

/** Builds the Go example CA into `.cache/plugins/` once per process and returns its path. */
let goBuild: Promise<string> | undefined;
export function goCaPlugin(): Promise<string> {
  goBuild ??= (async () => {
    const out = `${ROOT}.cache/plugins/go-ca`;
    const r = await new Deno.Command("go", {
      args: ["build", "-o", out, "."],
      cwd: `${ROOT}examples/plugins/go-ca`,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (r.code !== 0) throw new Error(`go build failed: ${new TextDecoder().decode(r.stderr)}`);
    return out;
  })();
  return goBuild;
}

/** A fake plugin (tests/fakes/ca_fake_plugin.ts) that misbehaves as `mode` says. */
export const FAKE_PLUGIN = `${ROOT}tests/fakes/ca_fake_plugin.ts`;

/** Loads an external CA plugin through the real loader, with its checksum. */
export async function loadExternalCa(
  path: string,
  entry: Record<string, unknown> = {},
): Promise<{ ca: CertificateAuthority; plugins: LoadedPlugins }> {
  const name = "ext-ca";
  const plugins = await loadPlugins([{
    kind: "ca",
    name,
    path: "plugins.external[0]",
    definition: externalPlugin("ca", name),
    config: { kind: "ca", name, path, sha256: await sha256File(path), ...entry },
  }], { enforce: ["ca"], context: (kind, n) => testContext(kind, n) });
  return { ca: plugins.of("ca")[0]!, plugins };
}
