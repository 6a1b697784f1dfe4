/**
 * A kernel worker entry for driver tests: the real driver/worker.ts loop with refusal
 * certificates from a {@linkcode FakeCa} built inside the worker (prepared when a `csr_sign`
 * arrives, served synchronously by the watchdog). The daemon's entry wires the identity side's
 * refusal issuer instead.
 *
 * @module
 */
import type { CsrSignData } from "../../driver/codec.ts";
import { KERNEL_WORKER_NAME } from "../../driver/link_protocol.ts";
import { isWorkerNamed } from "../../driver/worker_code.ts";
import { runKernelWorker } from "../../driver/worker.ts";
import { csrKeyId, FakeCa } from "./fake_ca.ts";

/** Starts a kernel worker running this module. */
export function spawnTestKernelWorker(): Worker {
  return new Worker(import.meta.url, { type: "module", name: KERNEL_WORKER_NAME });
}

if (isWorkerNamed(KERNEL_WORKER_NAME)) {
  runKernelWorker(async () => {
    const ca = await FakeCa.create();
    const ready = new Map<string, string>();
    const building = new Set<string>();
    return {
      prepareRefusal: (_task: unknown, data: CsrSignData) => {
        const id = csrKeyId(data.csr);
        if (ready.has(id) || building.has(id)) return;
        building.add(id);
        ca.refusal(data.csr).then((a) => ready.set(id, a)).finally(() => building.delete(id));
      },
      refusal: (_task: unknown, data: CsrSignData) => {
        const answer = ready.get(csrKeyId(data.csr));
        if (!answer) throw new Error("refusal for this CSR key not built yet");
        return answer;
      },
    };
  });
}
