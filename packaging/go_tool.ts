/**
 * Go programs the packaging build and its tests run: nfpm (deb and rpm), helm (chart lint and
 * render) and tests/packaging/k8s_decode (strict decoding against the Kubernetes API types).
 * Built from the Go module proxy at pinned versions and cached by version (or by source digest for
 * the local program) in `~/.cache/camblet-agent/tools`, like tests/peers does for its peers.
 *
 * @module
 */
import { join } from "node:path";
import { homedir } from "node:os";
import { exec } from "./_exec.ts";
import { ROOT } from "./bundle.ts";

/** A tool built with `go install module/pkg@version`, or from a local module directory. */
export interface GoTool {
  binary: string;
  /** `go install` target, pinned. */
  install?: { module: string; pkg: string; version: string; ldflags?: string };
  /** A module of this repository (its go.mod and go.sum pin the dependencies). */
  local?: string;
}

/** The pinned tools. */
export const GO_TOOLS = {
  nfpm: {
    binary: "nfpm",
    install: { module: "github.com/goreleaser/nfpm/v2", pkg: "cmd/nfpm", version: "v2.48.0" },
  },
  helm: {
    binary: "helm",
    install: { module: "helm.sh/helm/v3", pkg: "cmd/helm", version: "v3.21.4" },
  },
  k8s_decode: { binary: "k8s_decode", local: "tests/packaging/k8s_decode" },
} as const satisfies Record<string, GoTool>;

/** A tool's name. */
export type ToolName = keyof typeof GO_TOOLS;

function toolsDir(): string {
  const home = Deno.env.get("HOME") ?? homedir();
  return Deno.env.get("CAMBLET_TOOLS_DIR") ?? join(home, ".cache", "camblet-agent", "tools");
}

/** `go` from PATH, else the toolchain machines of this kind keep in /usr/local/go. */
async function goBinary(): Promise<string> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      await Deno.stat(join(dir, "go"));
      return join(dir, "go");
    } catch { /* next */ }
  }
  return "/usr/local/go/bin/go";
}

async function localDigest(dir: string): Promise<string> {
  const parts: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile) parts.push(e.name + "\0" + await Deno.readTextFile(join(dir, e.name)));
  }
  const data = new TextEncoder().encode(parts.sort().join("\0"));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return [...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Returns the path of `name`, building it first when this version is not cached. */
export async function ensureGoTool(
  name: ToolName,
  log: (line: string) => void = console.error,
): Promise<string> {
  const tool: GoTool = GO_TOOLS[name];
  const key = tool.install ? tool.install.version : await localDigest(join(ROOT, tool.local!));
  const dir = join(toolsDir(), `${name}-${key}`);
  const bin = join(dir, tool.binary);
  try {
    await Deno.stat(bin);
    return bin;
  } catch { /* build it */ }
  await Deno.mkdir(toolsDir(), { recursive: true });
  const tmp = await Deno.makeTempDir({ dir: toolsDir(), prefix: `.${name}-` });
  const started = Date.now();
  log(`packaging: building ${name} ${key} with Go (cached in ${dir})`);
  const env = { GOFLAGS: "-buildvcs=false", CGO_ENABLED: "0" };
  const ldflags = `-ldflags=-s -w ${tool.install?.ldflags ?? ""}`.trim();
  try {
    if (tool.install) {
      const i = tool.install;
      await exec(await goBinary(), [
        "install",
        "-trimpath",
        ldflags,
        `${i.module}/${i.pkg}@${i.version}`,
      ], { env: { ...env, GOBIN: tmp } });
    } else {
      await exec(await goBinary(), ["build", "-trimpath", "-mod=readonly", ldflags, "-o", tmp], {
        cwd: join(ROOT, tool.local!),
        env,
      });
    }
    await Deno.rename(tmp, dir).catch(async (e) => {
      // Another process built it first; use theirs.
      if (!(e instanceof Deno.errors.AlreadyExists) && !(await exists(bin))) throw e;
    });
    log(`packaging: ${name} ${key} built in ${Math.round((Date.now() - started) / 1000)} s`);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return bin;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
