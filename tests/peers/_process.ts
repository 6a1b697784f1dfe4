/**
 * Process plumbing shared by the peer starters: a logged long-running child, a one-shot command
 * runner, a free loopback port and a poll-until-ready loop.
 *
 * @module
 */

/** A long-running child whose stdout and stderr go to a log file. */
export interface LoggedProcess {
  readonly child: Deno.ChildProcess;
  readonly logPath: string;
  /** The log so far (for error messages). */
  logTail(lines?: number): Promise<string>;
  /** SIGTERM, then SIGKILL after `graceMs`; waits for exit and closes the log. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `cmd args` with output appended to `logPath`. */
export async function spawnLogged(
  cmd: string,
  args: string[],
  options: { logPath: string; cwd?: string; env?: Record<string, string>; clearEnv?: boolean },
): Promise<LoggedProcess> {
  const log = await Deno.open(options.logPath, { create: true, append: true });
  const child = new Deno.Command(cmd, {
    args,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.env === undefined ? {} : { env: options.env }),
    clearEnv: options.clearEnv ?? false,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = log.writable.getWriter();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) await writer.write(chunk);
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let stopped: Promise<void> | undefined;
  const logTail = async (lines = 30) => {
    const text = await Deno.readTextFile(options.logPath).catch(() => "");
    return text.split("\n").slice(-lines).join("\n");
  };
  return {
    child,
    logPath: options.logPath,
    logTail,
    stop(graceMs = 5_000) {
      stopped ??= (async () => {
        try {
          child.kill("SIGTERM");
        } catch { /* already exited */ }
        const timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* exited meanwhile */ }
        }, graceMs);
        await child.status;
        clearTimeout(timer);
        await pumps;
        await writer.close();
      })();
      return stopped;
    },
  };
}

/** The result of {@linkcode run}. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a short command to completion; throws with its output when `check` and it fails. */
export async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; check?: boolean; timeoutMs?: number } = {},
): Promise<RunResult> {
  const child = new Deno.Command(cmd, {
    args,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  const result = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  if ((options.check ?? true) && result.code !== 0) {
    const output = (result.stderr + result.stdout).trim();
    throw new Error(`${cmd} ${args.join(" ")} exited with ${result.code}: ${output}`);
  }
  return result;
}

/** A loopback TCP port free right now (the caller binds it soon after). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Calls `check` until it returns a value other than `undefined`, or throws with `what` and the
 * last error after `timeoutMs`.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  options: { timeoutMs?: number; intervalMs?: number; exited?: Promise<Deno.CommandStatus> } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let last: unknown = undefined;
  let exited: Deno.CommandStatus | undefined;
  options.exited?.then((s) => exited = s);
  while (true) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (exited !== undefined) {
      throw new Error(`Cannot wait for ${what}: the process exited with ${exited.code}`);
    }
    if (Date.now() > deadline) {
      const reason = last instanceof Error ? `: ${last.message}` : "";
      throw new Error(
        `Cannot wait for ${what}: not ready after ${options.timeoutMs ?? 30_000}ms${reason}`,
      );
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
}
