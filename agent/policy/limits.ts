/**
 * Last line of defence before the kernel: checks compiled payloads against what camblet-driver
 * can take without misbehaving (protocol doc §1, §3): required ids and paths, fixed-size arrays,
 * key formats and the size of each device write.
 *
 * @module
 */
import { KERNEL_LIMITS, type KernelPayloads } from "../../driver/payloads.ts";
import type { Problem } from "../errors.ts";

/**
 * Largest single message we write. The kernel's 2 MiB write buffer only resets on a read, and
 * config, services and policies are written back to back, so one message gets half of it.
 */
export const MAX_MESSAGE_BYTES = KERNEL_LIMITS.writeBudgetBytes / 2;

const IPV4 = String.raw`(?:\d{1,3}\.){3}\d{1,3}`;
const IPV6 = String.raw`(?:[0-9a-f]{4}:){7}[0-9a-f]{4}`;
const SD_KEY = new RegExp(`^(?:${IPV4}|${IPV6})(?::\\d{1,5})?$`);

/**
 * Bytes of the device message `{"command":"<command>","code":"<base64 of payload>"}\n`.
 *
 * @example
 * ```ts
 * import { messageBytes } from "./limits.ts";
 * messageBytes("load_config", { trust_domain: "acme.corp" }); // 67
 * ```
 */
export function messageBytes(command: string, payload: unknown): number {
  const json = new TextEncoder().encode(JSON.stringify(payload)).length;
  return `{"command":"${command}","code":""}\n`.length + 4 * Math.ceil(json / 3);
}

/**
 * JSON bytes of the smallest compiled policy or egress entry, comma included:
 * `{"position":0,"id":"<36-character uuid>","selectors":[{}],"certificate":{"workloadID":"a"}}`
 * is 108; an egress entry without selectors a little less. Every policy item and every egress
 * entry compiles to one, so a set's entry count bounds its `load_policies` message from below.
 */
export const MIN_ENTRY_JSON_BYTES = 80;

/** More compiled policy and egress entries than this can never fit one `load_policies` write. */
export const MAX_POLICY_ENTRIES = Math.floor(
  ((MAX_MESSAGE_BYTES - messageBytes("load_policies", { policies: [] })) / 4) * 3 /
    MIN_ENTRY_JSON_BYTES,
);

// A `workloadID` key (YAML block or flow, JSON) at the start of a line or after `{`, `,`, `-`.
const WORKLOAD_ID_KEY = /(?:^|[{,\-\s])["']?workloadID["']?[ \t]*:/gm;
const COMMENT_LINE = /^[ \t]*#.*$/gm;

/**
 * A cheap estimate, from the text alone, of how many policy and egress entries a policy file
 * holds: its `workloadID` keys outside comment lines (every entry needs one; YAML aliases can
 * only make the estimate lower). Meant to refuse a set that cannot fit before parsing it.
 *
 * @example
 * ```ts
 * import { estimatePolicyEntries } from "./limits.ts";
 * estimatePolicyEntries("- selectors: [{a: b}]\n  certificate: {workloadID: w}\n# workloadID: x\n"); // 1
 * ```
 */
export function estimatePolicyEntries(text: string): number {
  // Fast path: no key, no entries (most service files, empty files).
  if (!text.includes("workloadID")) return 0;
  return text.replace(COMMENT_LINE, "").match(WORKLOAD_ID_KEY)?.length ?? 0;
}

/**
 * Why `entries` compiled policy and egress entries cannot fit one `load_policies` write (see
 * {@linkcode MAX_POLICY_ENTRIES}); `undefined` when they may.
 *
 * @example
 * ```ts
 * import { entryCountProblem } from "./limits.ts";
 * entryCountProblem(10); // undefined
 * ```
 */
export function entryCountProblem(entries: number): string | undefined {
  if (entries <= MAX_POLICY_ENTRIES) return undefined;
  const least = messageBytes("load_policies", { policies: [] }) +
    Math.ceil(entries * MIN_ENTRY_JSON_BYTES / 3) * 4;
  return `${entries} policy and egress entries would take at least ${least} bytes compiled, ` +
    `above the ${MAX_MESSAGE_BYTES} bytes of one kernel write (at most ${MAX_POLICY_ENTRIES} fit)`;
}

/** Every way `payloads` would break the kernel; empty when they are safe to send. */
export function kernelPayloadProblems(payloads: KernelPayloads): Problem[] {
  const out: Problem[] = [];
  const bad = (source: string, message: string) => out.push({ source, message });
  const td = payloads.load_config.trust_domain;
  if (!td || td.length > KERNEL_LIMITS.maxTrustDomainLength) {
    bad("load_config", `trust domain must be 1..${KERNEL_LIMITS.maxTrustDomainLength} characters`);
  }
  const positions = new Set<number>();
  for (const p of payloads.load_policies.policies) {
    const where = `load_policies: policy ${p.position}`;
    if (!Number.isInteger(p.position) || p.position < 0 || positions.has(p.position)) {
      bad(where, "position must be a unique whole number");
    }
    positions.add(p.position);
    for (const e of [p, ...(p.egress ?? [])]) {
      if (!e.id) bad(where, "id is empty");
      if (!e.certificate?.workloadID) bad(where, "certificate.workloadID is empty");
      const n = e.connection?.allowedSPIFFEIDs?.length ?? 0;
      if (n > KERNEL_LIMITS.maxAllowedSpiffeIds) {
        bad(
          where,
          `${n} allowed SPIFFE IDs; the kernel holds ${KERNEL_LIMITS.maxAllowedSpiffeIds}`,
        );
      }
    }
  }
  for (const [key, entry] of Object.entries(payloads.load_sd_info)) {
    if (!SD_KEY.test(key)) bad("load_sd_info", `key "${key}" is not in the kernel's address form`);
    if (entry.labels.length > KERNEL_LIMITS.maxServiceLabels) {
      bad("load_sd_info", `"${key}" has ${entry.labels.length} labels; the kernel holds 127`);
    }
  }
  for (const command of ["load_config", "load_sd_info", "load_policies"] as const) {
    const size = messageBytes(command, payloads[command]);
    if (size > MAX_MESSAGE_BYTES) {
      bad(
        command,
        `the message would be ${size} bytes; one device write must stay under ` +
          `${MAX_MESSAGE_BYTES} (fewer policies or services, or fewer selector combinations)`,
      );
    }
  }
  return out;
}
