/**
 * Helpers of the guest-side guard scripts: a long-lived bash that runs one command per request
 * (so rules can change while it runs), and a one-shot shell.
 *
 * @module
 */

/** One check as the host asserts it. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** Result of {@linkcode Runner.run}. */
export interface RunResult {
  cmd: string;
  code: number;
  err: string;
}

let seq = 0;

/** A shell process (any bash-compatible binary) that stays alive between commands. */
export class Runner {
  readonly pid: number;
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;
  #id = seq++;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.pid = child.pid;
    this.#writer = child.stdin.getWriter();
    this.#lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(lineSplitter())
      [Symbol.asyncIterator]();
  }

  /** Starts `shell` (a bash) reading commands from stdin. */
  static start(shell: string, env: Record<string, string> = {}): Promise<Runner> {
    const child = new Deno.Command(shell, {
      args: ["--norc", "--noprofile"],
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    return Promise.resolve(new Runner(child));
  }

  /** Runs `cmd` in the shell (stdin /dev/null); its exit code and stderr. */
  async run(cmd: string): Promise<RunResult> {
    const err = `/tmp/runner-${Deno.pid}-${this.#id}.err`;
    await this.#writer.write(
      new TextEncoder().encode(`{ ${cmd} ; } </dev/null >/dev/null 2>${err}; echo "__rc $?"\n`),
    );
    for (;;) {
      const { value, done } = await this.#lines.next();
      if (done) return { cmd, code: -1, err: "shell exited" };
      if (value.startsWith("__rc ")) {
        const text = await Deno.readTextFile(err).catch(() => "");
        return { cmd, code: Number(value.slice(5)), err: text.trim() };
      }
    }
  }

  /** Ends the shell. */
  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    await this.#child.status;
  }
}

function lineSplitter(): TransformStream<string, string> {
  let buf = "";
  return new TransformStream({
    transform(chunk, ctrl) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        ctrl.enqueue(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    },
  });
}

/** Runs a bash script; throws with its stderr when it fails. */
export async function sh(script: string): Promise<void> {
  const o = await new Deno.Command("bash", { args: ["-c", script], stderr: "piped" }).output();
  if (!o.success) throw new Error(`${script}: ${new TextDecoder().decode(o.stderr)}`);
}
