/**
 * The daemon's kernel worker entry: driver/worker.ts's loop, with refusal certificates from the
 * identity side's {@linkcode RefusalIssuer} built inside the worker, so the watchdog can refuse
 * even while the main thread is blocked (in an intercepted accept, or busy).
 *
 * The worker is created from this module's own URL. Run from source that is this file; in the
 * bundle (`dist/camblet-agent.js`) it is the bundle, whose `main.ts` does nothing inside a worker
 * and whose top-level code below starts the worker's loop because of the worker's name.
 *
 * @module
 */
import type { CsrSignData } from "../../driver/codec.ts";
import { KERNEL_WORKER_NAME } from "../../driver/link_protocol.ts";
import { isWorkerNamed } from "../../driver/reader_worker.ts";
import { runKernelWorker, type WorkerSetupResult } from "../../driver/worker.ts";
import { parseCsr } from "../../plugins/sdk/csr.ts";
import { toBase64 } from "../../plugins/sdk/pem.ts";
import { systemClock } from "../../plugins/types.ts";
import {
  kernelCsrAnswer,
  type KernelTrustAnchor,
  TrustAnchorCache,
} from "../../driver/kernel_answer.ts";
import { RefusalIssuer } from "../identity/refusal.ts";

/** `setup` the daemon passes: the CA's trust anchors (standard base64 DER). */
export interface KernelWorkerSetup {
  anchors: string[];
  /** Lifetime of refusal certificates (default 60 s). */
  refusalValidityMs?: number;
}

/** Starts the daemon's kernel worker (this module, or the bundle, as the worker's code). */
export function spawnKernelWorker(): Worker {
  return new Worker(import.meta.url, { type: "module", name: KERNEL_WORKER_NAME });
}

function fromBase64(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

/** Builds the worker-side refusal: prepared per CSR key when a request arrives, served sync. */
export async function refusalSetup(setup: KernelWorkerSetup): Promise<WorkerSetupResult> {
  const validityMs = setup.refusalValidityMs ?? 60_000;
  const issuer = await RefusalIssuer.create({ clock: systemClock, validityMs });
  const cache = new TrustAnchorCache();
  const anchors: KernelTrustAnchor[] = [];
  for (const a of setup.anchors) {
    try {
      anchors.push(cache.get(fromBase64(a)));
    } catch { /* the identity manager refuses non-RSA CAs at startup */ }
  }
  if (anchors.length === 0) anchors.push(cache.get(issuer.placeholderAnchor));
  const fallback = kernelCsrAnswer(await issuer.issue(undefined), [], anchors);
  const ready = new Map<string, { answer: string; at: number }>();
  const building = new Set<string>();
  const keyOf = (data: CsrSignData) => {
    const csr = parseCsr(data.csr);
    return { id: toBase64(new Uint8Array(csr.publicKey.rawData)), key: csr.publicKey };
  };
  const fresh = (e: { at: number } | undefined) =>
    e !== undefined && Date.now() - e.at < validityMs / 2;
  return {
    prepareRefusal: (_task, data) => {
      const { id, key } = keyOf(data);
      if (fresh(ready.get(id)) || building.has(id)) return;
      building.add(id);
      issuer.issue(key)
        .then((der) => ready.set(id, { answer: kernelCsrAnswer(der, [], anchors), at: Date.now() }))
        .catch(() => {})
        .finally(() => building.delete(id));
    },
    refusal: (_task, data) => {
      try {
        const e = ready.get(keyOf(data).id);
        if (e) return e.answer;
      } catch { /* unreadable CSR: the prepared answer for a spare key */ }
      return fallback;
    },
  };
}

if (isWorkerNamed(KERNEL_WORKER_NAME)) {
  runKernelWorker((setup) => refusalSetup(setup as KernelWorkerSetup));
}
