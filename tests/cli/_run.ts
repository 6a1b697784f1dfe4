/**
 * Runs the real camblet-agent program as a subprocess. CI sets `CAMBLET_AGENT_JS` to the bundled
 * `dist/camblet-agent.js` so the CLI tests exercise what ships.
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname;

/** Output of one run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@linkcode runCli}. */
export interface RunCliOptions {
  env?: Record<string, string>;
  cwd?: string;
  stdin?: string;
  /** Kill after this many ms (default 60 s). */
  timeoutMs?: number;
}

/** The entry the tests run: the bundle when `CAMBLET_AGENT_JS` is set, else `main.ts`. */
export function agentEntry(): string {
  return Deno.env.get("CAMBLET_AGENT_JS") ?? `${ROOT}main.ts`;
}

/** Runs `camblet-agent ...args`. The environment is cleared of `AGENT_*` unless given. */
export async function runCli(args: string[], options: RunCliOptions = {}): Promise<CliResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (!k.startsWith("AGENT_") && k !== "CONFIG" && k !== "VERBOSITY") env[k] = v;
  }
  Object.assign(env, options.env ?? {});
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `--config=${ROOT}deno.json`, agentEntry(), ...args],
    cwd: options.cwd ?? ROOT,
    env,
    clearEnv: true,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * Set in CI's second pass over tests/cli/ (against the bundle): why a test that runs the checkout
 * itself (a clone, `task start`) skips there. The first pass ran it.
 */
export const BUNDLE_PASS: string | undefined = Deno.env.get("CAMBLET_AGENT_JS")
  ? "runs the checkout, not dist/camblet-agent.js (CI's bundle pass); the first pass ran it"
  : undefined;

/** Repository root (absolute, trailing slash). */
export const REPO_ROOT = ROOT;

/** True when `cmd args` runs and exits 0 (what a test needs before it runs, for its skip reason). */
export function works(cmd: string, args: string[], env: Record<string, string> = {}): boolean {
  try {
    return new Deno.Command(cmd, { args, env, stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

/** A process whose stdout and stderr are gathered into one log as they arrive. */
export interface LoggedProcess {
  child: Deno.ChildProcess;
  /** Everything printed so far. */
  log(): string;
  /** Resolves when both streams have ended. */
  pumps: Promise<void>;
  /** Polls the log until `re` matches or `ms` pass; true when it matched. */
  waitFor(re: RegExp, ms: number): Promise<boolean>;
}

/** Spawns `cmd` with piped output gathered by {@linkcode LoggedProcess}. */
export function spawnLogged(
  cmd: string,
  options: Omit<Deno.CommandOptions, "stdout" | "stderr">,
): LoggedProcess {
  const child = new Deno.Command(cmd, { ...options, stdout: "piped", stderr: "piped" }).spawn();
  let log = "";
  const dec = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) log += dec.decode(c, { stream: true });
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]).then(() => {});
  return {
    child,
    log: () => log,
    pumps,
    async waitFor(re, ms) {
      const end = Date.now() + ms;
      while (!re.test(log) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
      return re.test(log);
    },
  };
}
