/**
 * Runs a build command, returning stdout; a failure names the command and its output's tail.
 *
 * @module
 */

/** Options for {@linkcode exec}. */
export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Text for stdin. */
  stdin?: string;
}

/** Runs `cmd args`; throws `Error` naming the command, exit code and output tail on failure. */
export async function exec(
  cmd: string,
  args: string[],
  options: ExecOptions = {},
): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.env ? { env: options.env } : {}),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  if (!out.success) {
    const tail = (s: Uint8Array) => dec.decode(s).trim().split("\n").slice(-25).join("\n");
    throw new Error(
      `${cmd} ${args.join(" ")} exited with ${out.code}:\n${tail(out.stdout)}\n${tail(out.stderr)}`
        .trim(),
    );
  }
  return dec.decode(out.stdout);
}

/** Hex sha256 of a file. */
export async function sha256File(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
