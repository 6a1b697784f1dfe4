/**
 * Pushes the compiled payloads to the kernel: the startup order (`load_config`, trace `clear`,
 * `load_sd_info`, `load_policies`), then on every reload only what changed. The kernel replaces
 * each table whole, so "what changed" is per command. A payload too big for the kernel's write
 * budget is refused with the files that made it big.
 *
 * @module
 */
import {
  encodeLoadConfig,
  encodeLoadPolicies,
  encodeLoadSdInfo,
  encodeTraceRequest,
} from "../../driver/codec.ts";
import type { KernelPayloads } from "../../driver/payloads.ts";
import { formatBytes, PayloadTooLargeError } from "../../driver/transport.ts";
import type { PolicyProvenance } from "../cli/load_payloads.ts";

/** Where pushes go (a {@linkcode KernelLink}). */
export interface Pusher {
  push(line: string, what: string, key?: string): Promise<void>;
}

/** The configuration commands, in the order the kernel gets them at startup. */
export const PAYLOAD_COMMANDS = ["load_config", "load_sd_info", "load_policies"] as const;
/** One of {@linkcode PAYLOAD_COMMANDS}. */
export type PayloadCommand = typeof PAYLOAD_COMMANDS[number];

/** Context for naming what made a payload too big. */
export interface PayloadOrigin {
  provenance: Record<string, PolicyProvenance>;
  servicesFiles: string[];
}

function encode(command: PayloadCommand, p: KernelPayloads): string {
  switch (command) {
    case "load_config":
      return encodeLoadConfig(p.load_config);
    case "load_sd_info":
      return encodeLoadSdInfo(p.load_sd_info);
    case "load_policies":
      return encodeLoadPolicies(p.load_policies);
  }
}

/** The largest contributors to a payload, for the "too big" message. */
export function contributors(
  command: PayloadCommand,
  p: KernelPayloads,
  origin: PayloadOrigin,
): string {
  if (command === "load_sd_info") {
    return `the service table from ${origin.servicesFiles.join(", ") || "(no files)"}`;
  }
  if (command !== "load_policies") return "the trust domain";
  const byFile = new Map<string, number>();
  for (const pol of p.load_policies.policies) {
    const file = origin.provenance[pol.id]?.file ?? "(unknown file)";
    // Base64 grows the JSON by 4/3.
    byFile.set(file, (byFile.get(file) ?? 0) + Math.ceil(JSON.stringify(pol).length * 4 / 3));
  }
  const top = [...byFile.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3);
  return top.map(([f, n]) => `${f} (${formatBytes(n)})`).join(", ");
}

/** Tracks what the kernel has and pushes differences. */
export class PayloadSync {
  readonly #pusher: Pusher;
  readonly #last = new Map<PayloadCommand, string>();

  constructor(pusher: Pusher) {
    this.#pusher = pusher;
  }

  /** Startup: every payload, in the kernel's order, with the trace `clear` after `load_config`. */
  async pushInitial(p: KernelPayloads, origin: PayloadOrigin): Promise<void> {
    await this.#push("load_config", p, origin);
    // Trace filters survive agent restarts; the kernel wants "clear" (not the Go agent's "clear_all").
    await this.#pusher.push(encodeTraceRequest({ action: "clear" }), "manage_trace_requests");
    await this.#push("load_sd_info", p, origin);
    await this.#push("load_policies", p, origin);
  }

  /** Pushes the commands whose payload differs from what the kernel has; returns them. */
  async pushChanged(p: KernelPayloads, origin: PayloadOrigin): Promise<PayloadCommand[]> {
    const changed = PAYLOAD_COMMANDS.filter((c) => this.#last.get(c) !== encode(c, p));
    for (const c of changed) await this.#push(c, p, origin);
    return changed;
  }

  async #push(command: PayloadCommand, p: KernelPayloads, origin: PayloadOrigin): Promise<void> {
    const line = encode(command, p);
    try {
      await this.#pusher.push(line, command, command);
    } catch (e) {
      if (e instanceof PayloadTooLargeError) {
        throw new PayloadTooLargeError(
          `${command} (largest parts: ${contributors(command, p, origin)})`,
          e.bytes,
          e.limit,
        );
      }
      throw e;
    }
    this.#last.set(command, line);
  }
}
