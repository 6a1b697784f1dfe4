/**
 * The data the agent pushes to camblet-driver (protocol doc §3), decoded. The codec base64-encodes
 * these into the `code` field of `load_config`, `load_sd_info` and `load_policies`.
 *
 * @module
 */

/** A flat selector: label keys `name=value`, all `true`. Matches when it is a subset of the input labels. */
export type SelectorSet = Record<string, true>;

/** `certificate` block of a compiled policy or egress entry. */
export interface KernelCertificate {
  /** Path after `spiffe://<trust domain>/`; may hold `[label]` placeholders. */
  workloadID: string;
  dnsNames?: string[];
  /** Whole seconds with `s` suffix, e.g. `"3600s"`. */
  ttl?: string;
}

/** `connection` block; fields absent when zero, as protojson writes them. */
export interface KernelConnection {
  mtls?: "STRICT" | "DISABLE";
  passthrough?: boolean;
  /** At most 16 (fixed array in the kernel). */
  allowedSPIFFEIDs?: string[];
  /** Kernel-only: inject `X-Camblet-Spiffe-ID` into inbound HTTP/1.x. */
  http?: boolean;
}

/** One egress entry: matched against the destination service's labels. */
export interface KernelEgress {
  position: number;
  id: string;
  selectors: SelectorSet[];
  certificate: KernelCertificate;
  connection?: KernelConnection;
}

/** One compiled policy. `position`: lower wins. */
export interface KernelPolicy {
  position: number;
  id: string;
  selectors: SelectorSet[];
  certificate: KernelCertificate;
  connection?: KernelConnection;
  egress?: KernelEgress[];
}

/** `load_policies` payload. */
export interface LoadPolicies {
  policies: KernelPolicy[];
}

/** `load_sd_info` payload: keys are IPv4 dotted or fully expanded IPv6, optionally `:port`. */
export type LoadSdInfo = Record<string, { labels: string[] }>;

/** `load_config` payload. */
export interface LoadConfig {
  trust_domain: string;
}

/** Everything the agent pushes, keyed by kernel command (what `validate --output json` prints). */
export interface KernelPayloads {
  load_config: LoadConfig;
  load_sd_info: LoadSdInfo;
  load_policies: LoadPolicies;
}

/** Kernel limits the compiler enforces (protocol doc §3). */
export const KERNEL_LIMITS = {
  maxAllowedSpiffeIds: 16,
  maxServiceLabels: 127,
  maxTrustDomainLength: 255,
  /** The kernel's write buffer; a message must stay well under it. */
  writeBudgetBytes: 2 * 1024 * 1024,
} as const;

/** Namespace inode numbers the kernel sends with every request (kernel names, not the Go agent's). */
export interface NamespaceIds {
  uts: number;
  ipc: number;
  mnt: number;
  pid: number;
  net: number;
  time: number;
  cgroup: number;
}

/** The process that called accept/connect (protocol doc §2.1). The kernel's view wins over /proc. */
export interface TaskContext {
  uid: number;
  gid: number;
  /** Kernel-global; may be a thread id. */
  pid: number;
  /** Resolved executable, e.g. `/usr/bin/python3.11`. */
  command_path: string;
  /** comm, at most 15 characters. */
  command_name: string;
  cgroup_path: string;
  namespace_ids: NamespaceIds;
}
