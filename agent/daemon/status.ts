/**
 * The `/v1/status` document (what `camblet-agent status` prints), built from the daemon's state
 * and the kernel worker's counters.
 *
 * @module
 */
import type { LinkStats } from "../../driver/kernel_link.ts";
import { type HistogramSnapshot, LATENCY_BUCKETS_MS } from "../../driver/stats.ts";
import type { Problem } from "../errors.ts";
import type { SourcesStatus } from "../sources/mod.ts";
import type { PluginHealthEntry } from "./plugin_health.ts";
import type { DaemonGuardStatus } from "../guard/daemon_guard.ts";
import type { DaemonAuditStatus } from "../audit/daemon_audit.ts";

/** The last reload attempt. */
export interface ReloadRecord {
  at: string;
  reason: string;
  outcome: "applied" | "unchanged" | "rejected";
  changed: string[];
  problems: string[];
}

/** Latency summary of one command (bucket upper bounds: the real value is at most this). */
export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

/** The proxy data plane's part of the status. */
export interface ProxyStatus {
  /** Listener addresses. */
  outbound: string[];
  inbound: string[];
  failClosed: boolean;
  /** Service-table entries steered to the outbound listener. */
  protectedDestinations: number;
  /** Local ports whose listening process an inbound policy protects. */
  protectedPorts: number[];
  activeConnections: number;
  /** `direction/outcome` → count. */
  connections: Record<string, number>;
  /** The BPF programs' counters. */
  steering?: Record<string, number>;
  /** The workload certificates the agent holds (never keys). */
  identities?: unknown;
}

/** `/v1/status`. */
export interface AgentStatus {
  version: string;
  pid: number;
  startedAt: string;
  uptimeSeconds: number;
  ready: boolean;
  readyReason?: string;
  device: string;
  /** The data plane serving and why it was chosen. */
  dataPlane: { kind: "kernel" | "proxy"; reason: string };
  controlSocket: string;
  metricsAddress?: string;
  trustDomain: string;
  policy: {
    revision: number;
    policies: number;
    services: number;
    files: { policies: string[]; services: string[] };
    warnings: string[];
    lastReload?: ReloadRecord;
  };
  kernel?: {
    requests: Record<string, Record<string, number>>;
    outstanding: number;
    deadlineMisses: number;
    malformed: Record<string, number>;
    latency: Record<string, LatencySummary>;
    maxLatencyMs: number;
    writes: number;
    pushesWaiting: number;
  };
  proxy?: ProxyStatus;
  /** `kind/name` → 1 up, 0 down (the last health check). */
  plugins: Record<string, number>;
  /** `kind/name` → the last health check's answer, with the reason when down. */
  pluginHealth?: Record<string, PluginHealthEntry>;
  traceSubscribers: number;
  /** The runtime guard (BPF LSM), when a policy has a `runtime:` section. */
  runtimeGuard?: DaemonGuardStatus;
  /** The syscall audit (`agent.audit`). */
  audit?: DaemonAuditStatus;
  /** The policy sources (`camblet-agent sources` reads this). */
  sources: SourcesStatus;
}

/** Approximate percentile from a histogram: the upper bound of the bucket holding it. */
export function percentile(h: HistogramSnapshot, q: number): number {
  if (h.count === 0) return 0;
  const rank = Math.ceil(q * h.count);
  let cum = 0;
  for (let i = 0; i < h.buckets.length; i++) {
    cum += h.buckets[i]!;
    if (cum >= rank) return i < LATENCY_BUCKETS_MS.length ? LATENCY_BUCKETS_MS[i]! : Infinity;
  }
  return Infinity;
}

/** The kernel part of the status. */
export function kernelStatus(s: LinkStats): NonNullable<AgentStatus["kernel"]> {
  const latency: Record<string, LatencySummary> = {};
  for (const [command, h] of Object.entries(s.dispatch.latencyMs)) {
    latency[command] = {
      count: h.count,
      p50Ms: percentile(h, 0.5),
      p99Ms: percentile(h, 0.99),
      meanMs: h.count ? Math.round((h.sum / h.count) * 1000) / 1000 : 0,
    };
  }
  return {
    requests: s.dispatch.requests,
    outstanding: s.dispatch.outstanding,
    deadlineMisses: Object.values(s.dispatch.deadlineMisses).reduce((a, b) => a + b, 0),
    malformed: s.dispatch.malformed,
    latency,
    maxLatencyMs: Math.round(s.dispatch.maxLatencyMs * 1000) / 1000,
    writes: s.writer.writes,
    pushesWaiting: s.writer.pendingPushes,
  };
}

/** One line per problem, as `validate` prints them. */
export function problemLines(
  problems: readonly Problem[],
  format: (p: Problem) => string,
): string[] {
  return problems.map(format);
}
