/**
 * The daemon's data plane behind one interface: the kernel module (camblet-driver through
 * `/dev/camblet`) or, where it is absent, our eBPF-steered mTLS proxy. Policies, services,
 * identity and attestation are shared; only this part differs.
 *
 * @module
 */
import type { TraceRequest } from "../../driver/codec.ts";
import type { LinkStats } from "../../driver/kernel_link.ts";
import type { KernelPayloads } from "../../driver/payloads.ts";
import type { AgentConfig } from "../config/schema.ts";
import type { PayloadOrigin } from "./payload_sync.ts";
import type { AgentStatus } from "./status.ts";

/** Which data plane serves, and why it was picked. */
export interface DataPlaneChoice {
  kind: "kernel" | "proxy";
  /** For the log and `status`, e.g. "auto: /dev/camblet does not exist". */
  reason: string;
}

/** What the daemon needs from a data plane. */
export interface DataPlane {
  readonly choice: DataPlaneChoice;
  /** The first policies, services and trust domain. */
  pushInitial(payloads: KernelPayloads, origin: PayloadOrigin): Promise<void>;
  /** What differs from the last push, applied; returns the payload commands that changed. */
  pushChanged(payloads: KernelPayloads, origin: PayloadOrigin): Promise<string[]>;
  /** `camblet-agent trace` filters (the kernel's; the proxy has none yet). */
  pushTrace(request: TraceRequest): Promise<void>;
  /** Resolves when the data plane is lost (not on `close`). */
  readonly ended: Promise<string>;
  /** The data plane's part of `/v1/status`. */
  status(): Promise<Pick<AgentStatus, "kernel" | "proxy">>;
  /** Kernel link counters (kernel only) and extra Prometheus text. */
  metrics(): Promise<{ link?: LinkStats; text: string }>;
  close(): Promise<void>;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    return true; // e.g. EACCES: let opening it say why
  }
}

/** `--driver`: `auto` picks the kernel module when its device exists, else the proxy. */
export async function chooseDataPlane(agent: AgentConfig): Promise<DataPlaneChoice> {
  const dev = agent.kernelModuleDevice;
  if (agent.driver === "kernel") return { kind: "kernel", reason: "--driver kernel" };
  if (agent.driver === "proxy") return { kind: "proxy", reason: "--driver proxy" };
  return await exists(dev)
    ? { kind: "kernel", reason: `auto: ${dev} exists` }
    : { kind: "proxy", reason: `auto: ${dev} does not exist (camblet-driver not loaded)` };
}
