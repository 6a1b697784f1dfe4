/**
 * Tests that load the whole machine on purpose — queued kernel bursts against competing busy loops,
 * the fuzz, qemu guests — take one lock, so `deno test --parallel` never runs two of them at once:
 * each asserts the kernel's 1 s deadline under the load it makes itself, not under another's.
 *
 * @example
 * ```ts ignore
 * import { exclusive } from "../_exclusive.ts";
 * Deno.test("a burst", () => exclusive(async () => {/* … *\/}));
 * ```
 *
 * @module
 */

const LOCK = `${Deno.env.get("TMPDIR") ?? "/tmp"}/camblet-agent-tests-exclusive.lock`;

/**
 * Runs `fn` while holding the machine-wide test lock (an flock on a file in the temp directory:
 * held per open file, so it also orders test modules that share one process).
 */
export async function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const file = await Deno.open(LOCK, { create: true, write: true });
  try {
    await file.lock(true);
    return await fn();
  } finally {
    file.close(); // closing releases the lock
  }
}
