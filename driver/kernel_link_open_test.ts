/**
 * The kernel worker's reader is started by the main thread and handed over (started from the
 * worker, it took ~0.5 s more), so a failed open must end it here too.
 */
import assert from "node:assert/strict";
import { DeviceError, ERRNO } from "./ffi.ts";
import { KernelLink } from "./kernel_link.ts";
import { spawnTestKernelWorker } from "../tests/fakes/kernel_worker_entry.ts";
import { until } from "../tests/fakes/until.ts";

const handlers = {
  augment: () => Promise.resolve([]),
  csrSign: () => Promise.reject(new Error("unused")),
  log: () => {},
};

/** This process's Worker threads (Deno names them `worker-N`). */
function workerThreads(): number {
  let n = 0;
  for (const t of Deno.readDirSync("/proc/self/task")) {
    try {
      if (Deno.readTextFileSync(`/proc/self/task/${t.name}/comm`).startsWith("worker-")) n++;
    } catch { /* ended meanwhile */ }
  }
  return n;
}

Deno.test("a device that cannot be opened rejects with its errno; the worker and its reader end", async () => {
  const before = workerThreads();
  const opening = KernelLink.open(spawnTestKernelWorker(), {
    device: "/nonexistent/camblet",
    handlers,
  });
  // Both threads run: the kernel worker and the reader this thread started for it.
  assert.equal(workerThreads(), before + 2);
  await assert.rejects(
    opening,
    (e: unknown) => e instanceof DeviceError && e.errno === ERRNO.ENOENT,
  );
  await until(() => workerThreads() === before, "the worker's and the reader's threads to end");
});
