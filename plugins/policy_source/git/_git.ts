/**
 * Running the `git` CLI for the git source: no prompts, no `ext::` transports, a time limit per
 * command (the process is killed when it passes), secrets only in the environment (never in
 * arguments, which other users can see), and error messages with the last lines of git's output.
 *
 * @module
 */

/** How to run git. */
export interface GitEnv {
  /** Extra environment (credentials, GNUPGHOME, ssh command). */
  env: Record<string, string>;
  /** Secrets to blank out of messages. */
  secrets: string[];
  timeoutMs: number;
}

/** Output of one git command. */
export interface GitResult {
  code: number;
  stdout: Uint8Array;
  stderr: string;
}

/** A git command failed or timed out; the message says which and why. */
export class GitError extends Error {
  override name = "GitError";
}

const BASE_ENV: Record<string, string> = {
  GIT_TERMINAL_PROMPT: "0",
  GIT_ASKPASS: "/bin/false",
  SSH_ASKPASS: "/bin/false",
  // Remote helpers like ext:: run arbitrary commands; a policy URL never needs them.
  GIT_ALLOW_PROTOCOL: "file:git:http:https:ssh",
  LC_ALL: "C",
};

function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s) out = out.split(s).join("[REDACTED]");
  return out;
}

/** git's reason on one line: its `fatal:`/`error:` lines, else its last few lines. */
export function tail(text: string, lines = 3): string {
  const all = text.split("\n").map((l) => l.trim()).filter(Boolean);
  const errors = all.filter((l) => /^(fatal|error):/.test(l));
  return (errors.length ? errors.slice(0, lines) : all.slice(-lines)).join(" / ");
}

/** Runs `git args` (in `cwd`), feeding `stdin`; resolves with its output, rejects on timeout. */
export async function git(
  args: readonly string[],
  options: GitEnv & { cwd?: string; stdin?: Uint8Array; signal?: AbortSignal },
): Promise<GitResult> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, ctl.signal]) : ctl.signal;
  try {
    const child = new Deno.Command("git", {
      args: [...args],
      ...(options.cwd ? { cwd: options.cwd } : {}),
      env: { ...BASE_ENV, ...options.env },
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      signal,
    }).spawn();
    if (options.stdin) {
      const w = child.stdin.getWriter();
      // A failing git closes its stdin early; the exit status says why.
      await w.write(options.stdin).catch(() => {});
      await w.close().catch(() => {});
    }
    const out = await child.output();
    if (ctl.signal.aborted) {
      throw new GitError(`git ${args[0]} did not finish within ${options.timeoutMs} ms`);
    }
    if (options.signal?.aborted) throw new GitError(`git ${args[0]} was cancelled`);
    return {
      code: out.code,
      stdout: out.stdout,
      stderr: redact(new TextDecoder().decode(out.stderr), options.secrets),
    };
  } catch (e) {
    if (e instanceof GitError) throw e;
    throw new GitError(
      `Cannot run git ${args[0]}: ${redact((e as Error).message, options.secrets)}`,
    );
  } finally {
    clearTimeout(timer);
  }
}

/** Runs git and returns stdout; a non-zero exit is a {@linkcode GitError} with git's words. */
export async function gitOk(
  what: string,
  args: readonly string[],
  options: GitEnv & { cwd?: string; stdin?: Uint8Array; signal?: AbortSignal },
): Promise<Uint8Array> {
  const r = await git(args, options);
  if (r.code !== 0) {
    throw new GitError(`${what}: ${tail(r.stderr) || `git exited with ${r.code}`}`);
  }
  return r.stdout;
}

/** One entry of `git ls-tree -r -l -z`. */
export interface TreeEntry {
  mode: string;
  type: string;
  object: string;
  /** Bytes (blobs only). */
  size: number;
  path: string;
}

/** Parses `git ls-tree -r -l -z` output. */
export function parseLsTree(out: Uint8Array): TreeEntry[] {
  const text = new TextDecoder().decode(out);
  const entries: TreeEntry[] = [];
  for (const rec of text.split("\0")) {
    if (!rec) continue;
    const tab = rec.indexOf("\t");
    const [mode, type, object, size] = rec.slice(0, tab).split(/ +/);
    entries.push({
      mode: mode!,
      type: type!,
      object: object!,
      size: size === "-" ? 0 : Number(size),
      path: rec.slice(tab + 1),
    });
  }
  return entries;
}

/** Splits `git cat-file --batch` output into the objects' contents, in order. */
export function parseCatFileBatch(out: Uint8Array, count: number): Uint8Array[] {
  const blobs: Uint8Array[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const nl = out.indexOf(0x0a, at);
    if (nl < 0) throw new GitError("git cat-file: output ended early");
    const header = new TextDecoder().decode(out.subarray(at, nl));
    const m = /^[0-9a-f]+ blob (\d+)$/.exec(header);
    if (!m) throw new GitError(`git cat-file: unexpected ${JSON.stringify(header)}`);
    const size = Number(m[1]);
    blobs.push(out.subarray(nl + 1, nl + 1 + size));
    at = nl + 1 + size + 1;
  }
  return blobs;
}
