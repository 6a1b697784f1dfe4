/**
 * Environment for the qemu harness that makes a guest's clock count instructions
 * (tests/guard/icount/qemu-system-x86_64): host load then does not move a benchmark's figures.
 *
 * @module
 */
const DIR = new URL("./icount/", import.meta.url).pathname.replace(/\/$/, "");

/** Harness variables for an instruction-counted, single-vCPU TCG guest. */
export function icountEnv(): Record<string, string> {
  return { PATH: `${DIR}:${Deno.env.get("PATH") ?? ""}`, QH_ACCEL: "tcg", QH_SMP: "1" };
}
