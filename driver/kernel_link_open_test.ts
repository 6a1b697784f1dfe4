/**
 * A failed open ends the kernel worker's thread. It reads the device in its own isolate
 * (driver/device_file.ts): no reader thread is started beside it.
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

Deno.test("a device that cannot be opened rejects with its errno; the worker ends", async () => {
  const before = workerThreads();
  const opening = KernelLink.open(spawnTestKernelWorker(), {
    device: "/nonexistent/camblet",
    handlers,
  });
  // One thread: the kernel worker, and no reader beside it.
  assert.equal(workerThreads(), before + 1);
  await assert.rejects(
    opening,
    (e: unknown) => e instanceof DeviceError && e.errno === ERRNO.ENOENT,
  );
  await until(() => workerThreads() === before, "the worker's thread to end");
});
