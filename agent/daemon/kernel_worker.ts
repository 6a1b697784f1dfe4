/**
 * The daemon's kernel worker entry: driver/worker.ts's loop, with refusal certificates from the
 * identity side's {@linkcode RefusalIssuer} built inside the worker, so the watchdog can refuse
 * even while the main thread is blocked (in an intercepted accept, or busy).
 *
 * The worker is created from this module's own URL. Run from source that is this file; in the
 * bundle (`dist/camblet-agent.js`) it is this entry's own bundle, embedded there
 * (driver/worker_code.ts), whose top-level code below starts the worker's loop because of the
 * worker's name.
 *
 * @module
 */
import type { CsrSignData } from "../../driver/codec.ts";
import { KERNEL_WORKER_NAME } from "../../driver/link_protocol.ts";
import { isWorkerNamed, workerModuleUrl } from "../../driver/worker_code.ts";
import { runKernelWorker, type WorkerSetupResult } from "../../driver/worker.ts";
import { readCsrDer } from "../../plugins/sdk/leaf_der.ts";
import { parsePem } from "../../plugins/sdk/pem.ts";
import { toBase64 } from "../../plugins/sdk/pem.ts";
import { systemClock } from "../../plugins/types.ts";
import {
  kernelCsrAnswer,
  type KernelTrustAnchor,
  TrustAnchorCache,
} from "../../driver/kernel_answer.ts";
import { type Refusal, RefusalIssuer, type RefusalMaterial } from "../identity/refusal.ts";

/** `setup` the daemon passes: the CA's trust anchors (standard base64 DER). */
export interface KernelWorkerSetup {
  anchors: string[];
  /** Lifetime of refusal certificates (default 60 s). */
  refusalValidityMs?: number;
  /** The main thread's refusal issuer (else the worker generates its own). */
  refusal?: RefusalMaterial;
}

/** Starts the daemon's kernel worker (this module, or the bundle, as the worker's code). */
export function spawnKernelWorker(): Worker {
  return new Worker(workerModuleUrl(KERNEL_WORKER_NAME, import.meta.url), {
    type: "module",
    name: KERNEL_WORKER_NAME,
  });
}

function fromBase64(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

/**
 * Builds the worker-side refusal. Prepared per CSR key when a request arrives (the key is cut from
 * the CSR's DER in microseconds: the module shares one key between all workloads, protocol doc
 * §4.2) and served from the issuer's bounded cache; a key with nothing prepared at the deadline
 * gets one built synchronously (one native ECDSA signature), so the watchdog never waits on
 * anything queued.
 */
export async function refusalSetup(setup: KernelWorkerSetup): Promise<WorkerSetupResult> {
  const validityMs = setup.refusalValidityMs ?? 60_000;
  const options = { clock: systemClock, validityMs, synchronous: true };
  const issuer = setup.refusal
    ? await RefusalIssuer.fromMaterial(setup.refusal, options)
    : await RefusalIssuer.create(options);
  const cache = new TrustAnchorCache();
  const anchors: KernelTrustAnchor[] = [];
  for (const a of setup.anchors) {
    try {
      anchors.push(cache.get(fromBase64(a)));
    } catch { /* the identity manager refuses non-RSA CAs at startup */ }
  }
  if (anchors.length === 0) anchors.push(cache.get(issuer.placeholderAnchor));
  const [fallbackDer] = await Promise.all([issuer.issue(undefined), issuer.syncReady()]);
  const fallback = kernelCsrAnswer(fallbackDer, [], anchors);
  const answers = new WeakMap<Refusal, string>();
  const answerOf = (r: Refusal) => {
    let a = answers.get(r);
    if (a === undefined) answers.set(r, a = kernelCsrAnswer(r.der, [], anchors));
    return a;
  };
  const building = new Set<string>();
  const syncWindow = { at: 0, left: 10 };
  // plugins/sdk/csr.ts would load @peculiar/x509 into this isolate: read the PEM here.
  const spkiOf = (data: CsrSignData) => {
    const block = parsePem(data.csr).find((b) => b.label === "CERTIFICATE REQUEST");
    if (!block) throw new SyntaxError('Cannot parse CSR: no "CERTIFICATE REQUEST" PEM block');
    return readCsrDer(block.der).spki;
  };
  return {
    prepareRefusal: (_task, data) => {
      const spki = spkiOf(data);
      if (issuer.cached(spki)) return;
      const id = toBase64(spki);
      // Bounded: only a few keys are built at once (the real module has one).
      if (building.has(id) || building.size >= 4) return;
      building.add(id);
      issuer.refusal(spki).catch(() => {}).finally(() => building.delete(id));
    },
    refusal: (_task, data) => {
      let spki: Uint8Array;
      try {
        spki = spkiOf(data);
      } catch {
        return fallback; // unreadable CSR: the prepared answer for a spare key
      }
      const cached = issuer.cached(spki);
      if (cached) return answerOf(cached);
      // A synchronous build costs the answering thread a few ms: bounded, whatever the keys.
      const now = Date.now();
      if (now - syncWindow.at >= 1000) Object.assign(syncWindow, { at: now, left: 10 });
      if (syncWindow.left-- <= 0) return fallback;
      return answerOf(issuer.refusalSync(spki));
    },
  };
}

if (isWorkerNamed(KERNEL_WORKER_NAME)) {
  // The synchronous refusal signer's node:crypto (~0.2 s to load), loading from the spawn on,
  // while the main thread starts its plugins: the setup waits for it before the device opens.
  import("node:crypto").catch(() => {});
  runKernelWorker((setup) => refusalSetup(setup as KernelWorkerSetup));
}
