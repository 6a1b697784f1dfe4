/**
 * Runs the Go toolchain for one peer build, printing a progress line every few seconds and keeping
 * the output's tail for the error message.
 *
 * @module
 */

import { join } from "node:path";
import type { PeerBuild } from "./catalog.ts";

const PROGRESS_EVERY_MS = 15_000;
const TAIL_LINES = 40;
const LDFLAGS = "-ldflags=-s -w";

/** What was run, for BUILD.json. */
export interface GoBuildRecord {
  /** Shell command lines, in order (paths shown as the final cache directory). */
  commands: string[];
  goVersion: string;
}

/**
 * Builds `build`'s binaries into `outDir` with the strategy the catalog names. `shownDir` is the
 * directory `outDir` will be renamed to, for the record.
 */
export async function runGo(
  build: PeerBuild,
  outDir: string,
  shownDir: string,
  log: (line: string) => void,
): Promise<GoBuildRecord> {
  const shell = (args: string[]) =>
    args.map((a) => a.replaceAll(outDir, shownDir)).map((a) => /[\s"]/.test(a) ? `'${a}'` : a)
      .join(" ");
  const goVersion = (await go(["version"], { log, label: "go version", quiet: true })).trim();
  const label = `${build.key} ${build.version}`;
  log(`peers: ${label}: ${goVersion}; ${build.strategy} ${build.module}@${build.version}`);
  if (build.strategy === "install") {
    const targets = build.packages.map((p) => p === "." ? build.module : build.module + p.slice(1))
      .map((p) => `${p}@${build.version}`);
    const args = ["install", "-v", "-trimpath", LDFLAGS, ...build.buildArgs, ...targets];
    await go(args, { log, label, env: { GOBIN: outDir } });
    return { commands: [shell([`GOBIN=${outDir}`, "go", ...args])], goVersion };
  }
  const dl = await go(["mod", "download", "-json", `${build.module}@${build.version}`], {
    log,
    label,
    quiet: true,
  });
  const info = JSON.parse(dl) as { Dir?: string; Error?: string };
  if (info.Dir === undefined) {
    throw new Error(`go mod download ${build.module}@${build.version}: ${info.Error ?? dl}`);
  }
  const commands = [shell(["go", "mod", "download", `${build.module}@${build.version}`])];
  const src = await writableCopyWithoutLocalReplaces(info.Dir, outDir, log, label);
  commands.push(...src.commands.map(shell));
  const args = [
    "build",
    "-v",
    "-trimpath",
    LDFLAGS,
    src.modFlag,
    ...build.buildArgs,
    "-o",
    outDir + "/",
    ...build.packages,
  ];
  try {
    await go(args, { log, label, cwd: src.dir });
  } finally {
    if (src.dir !== info.Dir) await Deno.remove(src.dir, { recursive: true }).catch(() => {});
  }
  commands.push(shell(["cd", src.dir]), shell(["go", ...args]));
  return { commands, goVersion };
}

interface BuildSource {
  dir: string;
  modFlag: string;
  /** The preparation, as argument lists. */
  commands: string[][];
}

// Local-path replaces point at nested modules that are not in the module zip; drop them so the
// published versions required in go.mod are used. A module without them builds in place.
async function writableCopyWithoutLocalReplaces(
  dir: string,
  outDir: string,
  log: (line: string) => void,
  label: string,
): Promise<BuildSource> {
  const mod = JSON.parse(await go(["mod", "edit", "-json"], { log, label, cwd: dir, quiet: true }));
  const replaces = (mod.Replace ?? []) as { Old: { Path: string }; New: { Path: string } }[];
  const local = replaces.filter((r) => r.New.Path.startsWith("./") || r.New.Path.startsWith("../"))
    .map((r) => r.Old.Path);
  if (local.length === 0) return { dir, modFlag: "-mod=readonly", commands: [] };
  const copy = join(outDir, ".src");
  log(`peers: ${label}: dropping local replace directives for ${local.join(", ")}`);
  await exec("cp", ["-r", dir, copy]);
  await exec("chmod", ["-R", "u+w", copy]);
  const edits = local.map((p) => `-dropreplace=${p}`);
  await go(["mod", "edit", ...edits], { log, label, cwd: copy, quiet: true });
  return {
    dir: copy,
    modFlag: "-mod=mod",
    commands: [["cp", "-r", dir, copy], ["chmod", "-R", "u+w", copy], [
      "go",
      "-C",
      copy,
      "mod",
      "edit",
      ...edits,
    ]],
  };
}

interface GoOptions {
  log: (line: string) => void;
  label: string;
  cwd?: string;
  env?: Record<string, string>;
  /** Do not print progress (short commands). */
  quiet?: boolean;
}

// Runs `go args`, returning stdout; stderr (go's -v package list and downloads) drives progress.
async function go(args: string[], options: GoOptions): Promise<string> {
  const child = new Deno.Command("go", {
    args,
    cwd: options.cwd ?? Deno.cwd(),
    env: { GOFLAGS: "-buildvcs=false", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const started = Date.now();
  const tail: string[] = [];
  let downloads = 0;
  let packages = 0;
  const progress = options.quiet ? undefined : setInterval(() => {
    const s = Math.round((Date.now() - started) / 1000);
    options.log(
      `peers: ${options.label}: ${s}s, ${downloads} modules downloaded, ${packages} packages built`,
    );
  }, PROGRESS_EVERY_MS);
  const readErr = (async () => {
    for await (const line of lines(child.stderr)) {
      if (line.startsWith("go: downloading ")) downloads++;
      else if (/^[\w.-]+(\/[\w.~+-]+)*$/.test(line)) packages++;
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
    }
  })();
  const [out, status] = await Promise.all([new Response(child.stdout).text(), child.status]);
  await readErr;
  if (progress !== undefined) clearInterval(progress);
  if (!status.success) {
    const cmd = ["go", ...args].join(" ");
    const where = options.cwd === undefined ? "" : ` in ${options.cwd}`;
    const output = [...tail, out.trim().slice(0, 2000)].filter((l) => l !== "").join("\n");
    throw new Error(`${cmd}${where} exited with ${status.code}:\n${output}`);
  }
  return out;
}

async function exec(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop() ?? "";
    yield* parts;
  }
  if (rest !== "") yield rest;
}
