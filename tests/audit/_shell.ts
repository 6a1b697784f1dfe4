/**
 * Commands the audit tests trigger rules with. Capture is host-wide and other test files run
 * beside these, so a test counts only records of the shell it ran, or of that shell's children.
 *
 * @module
 */

/** Runs `cmd` under `sh -c` and returns the shell's pid. */
export async function sh(cmd: string): Promise<number> {
  const child = new Deno.Command("sh", { args: ["-c", cmd], stdout: "null", stderr: "null" })
    .spawn();
  await child.status;
  return child.pid;
}

/** True when record process `p` is the shell `pid` or runs under it. */
export function under(p: { pid: number; ancestors: { pid: number }[] }, pid: number): boolean {
  return p.pid === pid || p.ancestors.some((a) => a.pid === pid);
}
