/**
 * The kernel data plane: camblet-driver through `/dev/camblet`. The kernel worker reads the
 * device and answers `augment` and `csr_sign` through the daemon's handlers; payloads are pushed
 * in the kernel's order and only when they change.
 *
 * @module
 */
import { encodeBase64, encodeTraceRequest, type LogMessage } from "../../driver/codec.ts";
import { DeviceError, ERRNO, openErrorMessage } from "../../driver/ffi.ts";
import { KernelLink, type LinkStats } from "../../driver/kernel_link.ts";
import type { KernelPayloads } from "../../driver/payloads.ts";
import { logger } from "../log.ts";
import type { DataPlane, DataPlaneChoice } from "./data_plane.ts";
import { type KernelWorkerSetup, spawnKernelWorker } from "./kernel_worker.ts";
import { RefusalIssuer, type RefusalMaterial } from "../identity/refusal.ts";
import { type PayloadOrigin, PayloadSync } from "./payload_sync.ts";
import type { AgentServices } from "./services.ts";
import { kernelStatus } from "./status.ts";

const kernelLog = logger("kernel");

/** Options of {@linkcode openKernelPlane}. */
export interface KernelPlaneOptions {
  choice: DataPlaneChoice;
  device: string;
  services: AgentServices;
  /** Kernel `log` messages (trace). */
  onLog: (m: LogMessage) => void;
  spawnWorker?: () => Worker;
}

/** A missing device is a {@linkcode DeviceError} saying how to load the module. */
export async function assertDevice(device: string): Promise<void> {
  try {
    await Deno.stat(device);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new DeviceError(openErrorMessage(device, ERRNO.ENOENT), ERRNO.ENOENT);
    }
  }
}

/** Opens the device through the kernel worker. */
export async function openKernelPlane(o: KernelPlaneOptions): Promise<DataPlane> {
  await assertDevice(o.device);
  // Spawned first: the worker loads its modules while the anchors and refusal issuer are read.
  const worker = (o.spawnWorker ?? spawnKernelWorker)();
  let anchors: string[];
  let refusal: RefusalMaterial;
  try {
    anchors = (await o.services.trustAnchors()).map((d) => encodeBase64(d));
    // The identity manager's refusal issuer: the kernel worker signs with the same key.
    refusal = await (await RefusalIssuer.shared()).exportMaterial();
  } catch (e) {
    worker.terminate();
    throw e;
  }
  const services = o.services;
  const link = await KernelLink.open(worker, {
    device: o.device,
    setup: { anchors, refusal } satisfies KernelWorkerSetup,
    handlers: {
      augment: (task, signal) => services.augment(task, signal),
      csrSign: (task, data, id) => services.csrSign(task, data, id),
      log: o.onLog,
    },
    onEvent: (level, message, props) => {
      if (level === "error") kernelLog.error(message, props);
      else if (level === "warning") kernelLog.warn(message, props);
      else if (level === "info") kernelLog.info(message, props);
      else kernelLog.debug(message, props);
    },
  });
  kernelLog.info("Kernel device open", { device: o.device });
  return new KernelPlane(o.choice, link);
}

class KernelPlane implements DataPlane {
  readonly choice: DataPlaneChoice;
  readonly ended: Promise<string>;
  #link: KernelLink;
  #sync: PayloadSync;
  #closing = false;

  constructor(choice: DataPlaneChoice, link: KernelLink) {
    this.choice = choice;
    this.#link = link;
    this.#sync = new PayloadSync(link);
    this.ended = link.ended.then((e) =>
      this.#closing
        ? new Promise<string>(() => {})
        : e.reason === "eof"
        ? "the kernel device was closed"
        : e.message ?? e.reason
    );
  }

  pushInitial(p: KernelPayloads, origin: PayloadOrigin): Promise<void> {
    return this.#sync.pushInitial(p, origin);
  }

  pushChanged(p: KernelPayloads, origin: PayloadOrigin): Promise<string[]> {
    return this.#sync.pushChanged(p, origin);
  }

  pushTrace(request: Parameters<typeof encodeTraceRequest>[0]): Promise<void> {
    return this.#link.push(encodeTraceRequest(request), "manage_trace_requests");
  }

  async #stats(): Promise<LinkStats | undefined> {
    if (this.#closing) return undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        this.#link.stats(),
        new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), 1000)),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async status() {
    const stats = await this.#stats();
    return stats ? { kernel: kernelStatus(stats) } : {};
  }

  async metrics() {
    const link = await this.#stats();
    return link ? { link, text: "" } : { text: "" };
  }

  async close(): Promise<void> {
    this.#closing = true;
    await this.#link.close();
  }
}
