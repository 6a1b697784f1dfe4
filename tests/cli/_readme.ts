/**
 * Runs a README's shell blocks as a reader would, in a scratch root: a fresh clone of this
 * repository, as root in a mount and network namespace of its own, where `/etc`, `/run` and
 * `/usr/local/bin` are overlays whose writes land in a scratch directory (so `sudo mkdir
 * /etc/camblet` and `sudo install … /usr/local/bin/camblet-agent` touch nothing of the host).
 *
 * Convention (README authors rely on it):
 * - every fenced `sh` block runs, in order, in one shell, sharing state (cwd, files, variables);
 * - a block whose previous non-blank line is `<!-- readme-test: skip: <reason> -->` does not run,
 *   and the reason is printed;
 * - `sudo` runs the command as it is (the test is root already);
 * - a command ending in `&` runs in the background (its output in a log); the runner waits until
 *   it has been quiet for 3 s, fails if it already exited, and stops it (SIGTERM to its process
 *   group) at the end of its block;
 * - any other command must exit 0.
 *
 * @module
 */

/** One fenced shell block. */
export interface ReadmeBlock {
  /** 1-based line of the opening fence. */
  line: number;
  code: string;
  /** The reason of a `readme-test: skip:` marker. */
  skip?: string;
}

const SKIP = /^<!--\s*readme-test:\s*skip:\s*(.+?)\s*-->$/;

/** The `sh`/`bash`/`shell` blocks of a Markdown text, with their skip reasons. */
export function readmeBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split("\n");
  const blocks: ReadmeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})\s*(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    let end = i + 1;
    while (end < lines.length && lines[end]!.trim() !== fence) end++;
    if (["sh", "bash", "shell"].includes(open[2]!)) {
      let prev = i - 1;
      while (prev >= 0 && lines[prev]!.trim() === "") prev--;
      const skip = prev >= 0 ? SKIP.exec(lines[prev]!.trim())?.[1] : undefined;
      const block: ReadmeBlock = { line: i + 1, code: lines.slice(i + 1, end).join("\n") };
      if (skip) block.skip = skip;
      blocks.push(block);
    }
    i = end;
  }
  return blocks;
}

/** The commands of a block: `\` continuations joined, blank and comment-only lines dropped. */
export function blockCommands(code: string): string[] {
  const out: string[] = [];
  let current = "";
  for (const raw of code.split("\n")) {
    const line = raw.replace(/\s+$/, "");
    if (line.endsWith("\\")) {
      current += line.slice(0, -1) + " ";
      continue;
    }
    current += line;
    if (current.trim() !== "" && !current.trim().startsWith("#")) out.push(current.trim());
    current = "";
  }
  return out;
}

/** A command without its trailing comment, and whether it ends with a lone `&`. */
export function background(command: string): { command: string; background: boolean } {
  // A `#` that starts a word begins a comment (the README's commands quote no such `#`).
  const bare = command.replace(/(^|\s)#.*$/, "").trim();
  const m = /^(.*[^&])&$/.exec(bare);
  return m ? { command: m[1]!.trim(), background: true } : { command: bare, background: false };
}

function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The bash script that runs `blocks` (skipped ones excluded by the caller). */
export function readmeScript(blocks: readonly ReadmeBlock[], logDir: string): string {
  const lines = [
    "set -u",
    "set -m # each background job in a process group of its own, to stop it whole",
    'sudo() { "$@"; }',
    "BG=()",
    `quiet() { # until $1 has not grown for 3 s (at most 90 s)
  local last=-1 same=0 i=0 size
  while [ $i -lt 900 ]; do
    size=$(stat -c %s "$1" 2>/dev/null || echo 0)
    if [ "$size" = "$last" ]; then same=$((same + 1)); [ $same -ge 30 ] && return 0
    else same=0; last=$size; fi
    sleep 0.1; i=$((i + 1))
  done
}`,
    `stop_bg() {
  local p
  for p in "\${BG[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
  for p in "\${BG[@]}"; do wait "$p" 2>/dev/null; done
  BG=()
}`,
    `fail() { echo "::fail $1"; stop_bg; exit 1; }`,
  ];
  let n = 0;
  for (const b of blocks) {
    lines.push(`echo ${quote(`::block README.md:${b.line}`)}`);
    for (const raw of blockCommands(b.code)) {
      const c = background(raw);
      const where = `README.md:${b.line}: ${c.command}`;
      lines.push(`echo ${quote(`$ ${raw}`)}`);
      if (c.background) {
        const log = `${logDir}/bg-${++n}.log`;
        lines.push(
          `( ${c.command} ) > ${quote(log)} 2>&1 &`,
          `BG+=($!); BGLOG=${quote(log)}; export BGLOG`,
          `quiet "$BGLOG"`,
          `kill -0 $! 2>/dev/null || { cat "$BGLOG"; fail ${quote(`${where}: exited early`)}; }`,
        );
      } else {
        lines.push(`${c.command}`, `rc=$?; [ $rc -eq 0 ] || fail ${quote(where)}" (exit $rc)"`);
      }
    }
    lines.push("stop_bg");
  }
  lines.push('echo "::done"');
  return lines.join("\n") + "\n";
}

/** Result of {@linkcode runInScratchRoot}. */
export interface ScratchRun {
  code: number;
  output: string;
  /** The background commands' logs, in start order. */
  logs: string[];
}

/**
 * Clones `repo` into a scratch directory and runs `blocks` there in namespaces (see the module
 * doc); a function gets the clone's path and picks them (e.g. from the clone's own README).
 * Needs root and `unshare`. `env` adds variables.
 */
export async function runInScratchRoot(
  repo: string,
  blocks: readonly ReadmeBlock[] | ((clone: string) => Promise<readonly ReadmeBlock[]>),
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ScratchRun> {
  const scratch = await Deno.makeTempDir({ prefix: "camblet-readme-" });
  try {
    const clone = `${scratch}/camblet-agent`;
    const git = await new Deno.Command("git", {
      args: ["clone", "--quiet", repo, clone],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!git.success) {
      throw new Error(`Cannot clone ${repo}: ${new TextDecoder().decode(git.stderr)}`);
    }
    const logDir = `${scratch}/logs`;
    await Deno.mkdir(logDir);
    const chosen = typeof blocks === "function" ? await blocks(clone) : blocks;
    await Deno.writeTextFile(`${scratch}/readme.sh`, readmeScript(chosen, logDir));
    const overlays = ["/etc", "/run", "/usr/local/bin"].map((dir, i) => {
      const up = `${scratch}/overlay/${i}/up`;
      const work = `${scratch}/overlay/${i}/work`;
      return `mkdir -p ${up} ${work} && mount -t overlay overlay ` +
        `-o lowerdir=${dir},upperdir=${up},workdir=${work} ${dir}`;
    });
    const setup = [
      "set -e",
      "mount --make-rprivate /",
      ...overlays,
      "ip link set lo up",
      `cd ${quote(clone)}`,
      "set +e",
      `exec bash ${quote(`${scratch}/readme.sh`)} 2>&1`,
    ].join("\n");
    const env: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/root",
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
      // No network in the namespace: npx uses the deno@… it has cached.
      npm_config_offline: "true",
      ...options.env,
    };
    for (const k of ["DENO_DIR", "CAMBLET_PEERS_DIR", "GOPATH", "GOCACHE", "GOMODCACHE"]) {
      const v = Deno.env.get(k);
      if (v && env[k] === undefined) env[k] = v;
    }
    const child = new Deno.Command("unshare", {
      args: ["--mount", "--net", "--fork", "--", "bash", "-c", setup],
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 600_000);
    const out = await child.output();
    clearTimeout(timer);
    const dec = new TextDecoder();
    const logs: string[] = [];
    for (let i = 1;; i++) {
      try {
        logs.push(await Deno.readTextFile(`${logDir}/bg-${i}.log`));
      } catch {
        break;
      }
    }
    return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr), logs };
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
}
