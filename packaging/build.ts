/**
 * `deno task package`: the self-contained install tree and, from it, the deb, rpm and tarball of
 * each architecture, into dist/packages/:
 *
 * - /usr/lib/camblet-agent/camblet-agent.js  the stamped bundle (packaging/bundle.ts)
 * - /usr/lib/camblet-agent/deno              the Deno runtime from npm (packaging/deno_runtime.ts)
 * - /usr/lib/camblet-agent/{BUILD.json,SHA256SUMS}
 * - /usr/bin/camblet-agent                   the launcher
 * - the systemd unit, camblet-agent(8), bash/zsh/fish completions, example policies
 * - /etc/camblet/{config.yaml,policies/README,services/README}  (conffiles in deb and rpm)
 *
 * Usage: deno run -A packaging/build.ts [--arch x86_64,aarch64] [--format deb,rpm,tar]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { basename, join } from "node:path";
import { gzipSync } from "node:zlib";
import { buildProgram } from "../agent/cli/program.ts";
import { renderManPage } from "../agent/cli/manpage.ts";
import { completionScript } from "../agent/cli/completion.ts";
import { VERSION } from "../agent/version.ts";
import { bundle, ROOT } from "./bundle.ts";
import {
  type Arch,
  ARCHES,
  DENO_VERSION,
  ensureDenoRuntime,
  runtimeTarget,
} from "./deno_runtime.ts";
import { ensureGoTool } from "./go_tool.ts";
import { exec, sha256File } from "./_exec.ts";

/** Package formats. */
export const FORMATS = ["deb", "rpm", "tar"] as const;
/** One of {@linkcode FORMATS}. */
export type Format = typeof FORMATS[number];

/** Where the packages go. */
export const PACKAGES_DIR: string = join(ROOT, "dist", "packages");

/** The launcher installed as /usr/bin/camblet-agent. */
export const LAUNCHER = `#!/bin/sh
# camblet-agent: the bundled program on the Deno runtime shipped beside it (no other Deno, npm or
# network needed). --no-config: a deno.json in the working directory must not change the agent.
export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1
if [ -z "\${DENO_DIR:-}" ]; then
  # Deno's code cache: the package's cache directory for root (purge removes it), else the user's.
  if [ -w /var/cache/camblet ]; then
    DENO_DIR=/var/cache/camblet/deno
  else
    DENO_DIR="\${XDG_CACHE_HOME:-\${HOME:-/tmp}/.cache}/camblet-agent/deno"
  fi
  export DENO_DIR
fi
# V8 heap flags: README "Development", "Memory".
exec /usr/lib/camblet-agent/deno run --allow-all --no-config --no-lock --no-remote --quiet \\
  --v8-flags=--max-semi-space-size=2,--optimize-for-size /usr/lib/camblet-agent/camblet-agent.js "$@"
`;

/** One built file. */
export interface Artefact {
  arch: Arch;
  format: Format;
  path: string;
  bytes: number;
  sha256: string;
}

/** Options for {@linkcode buildPackages}. */
export interface BuildOptions {
  arches?: Arch[];
  formats?: Format[];
  /** Output directory (default: dist/packages). */
  outDir?: string;
  /** Where the install trees are staged (default: dist/packaging). */
  stageDir?: string;
  /** Package release (default "1"); tests build "2" to upgrade to. */
  release?: string;
  log?: (line: string) => void;
}

async function write(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  if (typeof data === "string") await Deno.writeTextFile(path, data);
  else await Deno.writeFile(path, data);
  await Deno.chmod(path, mode);
}

// The files every architecture shares (the bundle's stamp names the runtime, so it is per arch).
async function stageCommon(stage: string): Promise<void> {
  const program = buildProgram();
  await write(
    join(stage, "usr/share/man/man8/camblet-agent.8.gz"),
    gzipSync(new TextEncoder().encode(renderManPage(program)), { level: 9 }),
  );
  await write(
    join(stage, "usr/share/bash-completion/completions/camblet-agent"),
    completionScript(program, "bash"),
  );
  await write(
    join(stage, "usr/share/zsh/site-functions/_camblet-agent"),
    completionScript(program, "zsh"),
  );
  await write(
    join(stage, "usr/share/fish/vendor_completions.d/camblet-agent.fish"),
    completionScript(program, "fish"),
  );
  await write(
    join(stage, "usr/lib/systemd/system/camblet-agent.service"),
    await Deno.readTextFile(join(ROOT, "packaging/systemd/camblet-agent.service")),
  );
  await write(join(stage, "usr/bin/camblet-agent"), LAUNCHER, 0o755);
  const examples = join(stage, "usr/share/doc/camblet-agent/examples");
  await Deno.mkdir(join(examples, ".."), { recursive: true });
  await exec("cp", ["-r", join(ROOT, "policies/examples"), examples]);
  await exec("cp", ["-r", join(ROOT, "packaging/etc"), stage]);
  await exec("chmod", ["-R", "u=rwX,go=rX", join(stage, "usr/share/doc"), join(stage, "etc")]);
}

/** Builds the install tree of `arch` under `stage`; returns the bundle's stamp. */
export async function stageTree(arch: Arch, stage: string): Promise<void> {
  const t = runtimeTarget(arch);
  await Deno.remove(stage, { recursive: true }).catch(() => {});
  await stageCommon(stage);
  const lib = join(stage, "usr/lib/camblet-agent");
  const form = `bundle on the Deno runtime from npm ${t.package}@${DENO_VERSION}`;
  const stamp = await bundle(join(lib, "camblet-agent.js"), form);
  await Deno.chmod(join(lib, "camblet-agent.js"), 0o644);
  await Deno.copyFile(await ensureDenoRuntime(arch), join(lib, "deno"));
  await Deno.chmod(join(lib, "deno"), 0o755);
  await write(
    join(lib, "BUILD.json"),
    JSON.stringify(
      {
        name: "camblet-agent",
        version: VERSION,
        ...stamp,
        target: t.target,
        denoRuntime: { package: t.package, version: DENO_VERSION, integrity: t.integrity },
      },
      null,
      2,
    ) + "\n",
  );
  const sums: string[] = [];
  for (const f of ["camblet-agent.js", "deno"]) {
    sums.push(`${await sha256File(join(lib, f))}  ${f}`);
  }
  await write(join(lib, "SHA256SUMS"), sums.join("\n") + "\n");
}

/**
 * packaging/nfpm.yaml with its `${NAME}` variables filled (nfpm itself does not expand them in
 * file paths). An unknown variable is an error naming it.
 */
export function nfpmConfig(template: string, vars: Record<string, string>): string {
  return template.replace(/\$\{(\w+)\}/g, (_, name: string) => {
    const v = vars[name];
    if (v === undefined) {
      throw new RangeError(`Cannot fill packaging/nfpm.yaml: no value for \${${name}}`);
    }
    return v;
  });
}

async function nfpm(
  arch: Arch,
  format: "deb" | "rpm",
  stage: string,
  { out, release }: { out: string; release: string },
) {
  const t = runtimeTarget(arch);
  const bin = await ensureGoTool("nfpm");
  const name = format === "deb"
    ? `camblet-agent_${VERSION}-${release}_${t.deb}.deb`
    : `camblet-agent-${VERSION}-${release}.${t.rpm}.rpm`;
  const target = join(out, name);
  const config = join(stage, "..", `nfpm-${arch}.yaml`);
  await Deno.writeTextFile(
    config,
    nfpmConfig(await Deno.readTextFile(join(ROOT, "packaging/nfpm.yaml")), {
      CAMBLET_ARCH: t.deb,
      CAMBLET_VERSION: VERSION,
      CAMBLET_RELEASE: release,
      CAMBLET_STAGE: stage,
      CAMBLET_SCRIPTS: join(ROOT, "packaging/scripts"),
    }),
  );
  await exec(bin, [
    "package",
    "--config",
    config,
    "--packager",
    format,
    "--target",
    target,
  ], {
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/root",
      ...(Deno.env.get("SOURCE_DATE_EPOCH")
        ? { SOURCE_DATE_EPOCH: Deno.env.get("SOURCE_DATE_EPOCH")! }
        : {}),
    },
  });
  return target;
}

async function tarball(arch: Arch, stage: string, out: string): Promise<string> {
  const target = join(out, `camblet-agent-${VERSION}-linux-${arch}.tar.gz`);
  await exec("tar", [
    "-C",
    stage,
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "--sort=name",
    "-czf",
    target,
    "./usr",
    "./etc",
  ]);
  return target;
}

/** Builds every requested package; returns them with sizes and digests. */
export async function buildPackages(options: BuildOptions = {}): Promise<Artefact[]> {
  const arches = options.arches ?? ARCHES;
  const out = options.outDir ?? PACKAGES_DIR;
  const release = options.release ?? "1";
  const formats = options.formats ?? [...FORMATS];
  const log = options.log ?? console.error;
  await Deno.mkdir(out, { recursive: true });
  const built: Artefact[] = [];
  for (const arch of arches) {
    const stage = join(options.stageDir ?? join(ROOT, "dist", "packaging"), arch);
    const started = Date.now();
    await stageTree(arch, stage);
    log(`packaging: ${arch} install tree staged in ${stage} (${Date.now() - started} ms)`);
    for (const format of formats) {
      const t0 = Date.now();
      const path = format === "tar"
        ? await tarball(arch, stage, out)
        : await nfpm(arch, format, stage, { out, release });
      const bytes = (await Deno.stat(path)).size;
      built.push({ arch, format, path, bytes, sha256: await sha256File(path) });
      log(`packaging: ${basename(path)}: ${(bytes / 1e6).toFixed(1)} MB (${Date.now() - t0} ms)`);
    }
  }
  await Deno.writeTextFile(
    join(out, "SHA256SUMS"),
    built.map((a) => `${a.sha256}  ${basename(a.path)}`).join("\n") + "\n",
  );
  return built;
}

function parseList<T extends string>(value: string | undefined, all: readonly T[], what: string) {
  if (value === undefined) return [...all];
  const items = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const i of items) {
    if (!(all as readonly string[]).includes(i)) {
      throw new RangeError(`Cannot build ${what} "${i}": choose from ${all.join(", ")}`);
    }
  }
  return items as T[];
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { arch: { type: "string" }, format: { type: "string" } },
  });
  try {
    const built = await buildPackages({
      arches: parseList(values.arch, ARCHES, "architecture"),
      formats: parseList(values.format, FORMATS, "format"),
    });
    for (const a of built) console.log(`${a.bytes}\t${a.path}`);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
