/**
 * Prometheus text for `/metrics`: the kernel link's counters and answer-latency histograms (from
 * the kernel worker), the agent's own gauges (policy revision, readiness, plugins, trace
 * subscribers, memory), and the shared registry the identity manager counts in.
 *
 * @module
 */
import type { LinkStats } from "../../driver/kernel_link.ts";
import { LATENCY_BUCKETS_MS } from "../../driver/stats.ts";

/** Gauges the daemon knows. */
export interface AgentGauges {
  ready: boolean;
  policyRevision: number;
  policies: number;
  services: number;
  /** Reloads by outcome (`applied`, `unchanged`, `rejected`). */
  reloads: Record<string, number>;
  lastReloadSeconds?: number;
  /** `kind/name` → 1 running, 0 failed. */
  plugins: Record<string, number>;
  traceSubscribers: number;
}

function esc(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labels(l: Readonly<Record<string, string>>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`);
  return parts.length > 0 ? `{${parts.join(",")}}` : "";
}

class Out {
  lines: string[] = [];
  metric(name: string, type: string, help: string): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  }
  sample(name: string, l: Record<string, string>, v: number): void {
    this.lines.push(`${name}${labels(l)} ${Number.isFinite(v) ? v : 0}`);
  }
}

/** Renders everything as Prometheus text exposition format. */
export function renderMetrics(
  link: LinkStats | undefined,
  gauges: AgentGauges,
  registryText = "",
): string {
  const o = new Out();
  o.metric("camblet_agent_ready", "gauge", "1 when the kernel has the agent's configuration");
  o.sample("camblet_agent_ready", {}, gauges.ready ? 1 : 0);
  if (link) {
    const d = link.dispatch;
    o.metric("camblet_kernel_requests_total", "counter", "kernel requests by command and outcome");
    for (const [command, byOutcome] of Object.entries(d.requests)) {
      for (const [outcome, n] of Object.entries(byOutcome)) {
        o.sample("camblet_kernel_requests_total", { command, outcome }, n);
      }
    }
    o.metric(
      "camblet_kernel_answer_duration_seconds",
      "histogram",
      "time from reading a kernel request to writing its answer",
    );
    for (const [command, h] of Object.entries(d.latencyMs)) {
      let cum = 0;
      LATENCY_BUCKETS_MS.forEach((b, i) => {
        cum += h.buckets[i]!;
        o.sample(
          "camblet_kernel_answer_duration_seconds_bucket",
          { command, le: String(b / 1000) },
          cum,
        );
      });
      o.sample("camblet_kernel_answer_duration_seconds_bucket", { command, le: "+Inf" }, h.count);
      o.sample("camblet_kernel_answer_duration_seconds_sum", { command }, h.sum / 1000);
      o.sample("camblet_kernel_answer_duration_seconds_count", { command }, h.count);
    }
    o.metric(
      "camblet_kernel_deadline_misses_total",
      "counter",
      "answers written 1 s or more after the read",
    );
    for (const command of ["augment", "csr_sign"]) {
      o.sample("camblet_kernel_deadline_misses_total", { command }, d.deadlineMisses[command] ?? 0);
    }
    o.metric(
      "camblet_kernel_malformed_total",
      "counter",
      "kernel lines that could not be used as they are, by reason (answered when an id was readable)",
    );
    for (const [reason, n] of Object.entries(d.malformed)) {
      o.sample("camblet_kernel_malformed_total", { reason }, n);
    }
    o.metric(
      "camblet_kernel_malformed_dropped_total",
      "counter",
      "malformed kernel lines left unanswered, by why (no_id, ambiguous_id, message)",
    );
    for (const [reason, n] of Object.entries(d.malformedDropped ?? {})) {
      o.sample("camblet_kernel_malformed_dropped_total", { reason }, n);
    }
    o.metric("camblet_kernel_outstanding_requests", "gauge", "requests read and not yet answered");
    o.sample("camblet_kernel_outstanding_requests", {}, d.outstanding);
    const signed = d.requests["csr_sign"]?.["signed"] ?? 0;
    o.metric(
      "camblet_certificates_issued_total",
      "counter",
      "csr_sign answered by the identity manager",
    );
    o.sample("camblet_certificates_issued_total", {}, signed);
    const w = link.writer;
    o.metric("camblet_kernel_writes_total", "counter", "write() calls on the device");
    o.sample("camblet_kernel_writes_total", {}, w.writes);
    o.metric("camblet_kernel_written_bytes_total", "counter", "bytes written to the device");
    o.sample("camblet_kernel_written_bytes_total", {}, w.bytes);
    o.metric(
      "camblet_kernel_pushes_waiting",
      "gauge",
      "configuration pushes waiting for the kernel's next read",
    );
    o.sample("camblet_kernel_pushes_waiting", {}, w.pendingPushes);
  }
  o.metric(
    "camblet_policy_revision",
    "gauge",
    "revision of the policy set in the kernel (increments on change)",
  );
  o.sample("camblet_policy_revision", {}, gauges.policyRevision);
  o.metric("camblet_policies_loaded", "gauge", "compiled policies in the kernel");
  o.sample("camblet_policies_loaded", {}, gauges.policies);
  o.metric("camblet_service_addresses_loaded", "gauge", "service table entries in the kernel");
  o.sample("camblet_service_addresses_loaded", {}, gauges.services);
  o.metric("camblet_policy_reloads_total", "counter", "policy and service reloads by outcome");
  for (const [outcome, n] of Object.entries(gauges.reloads)) {
    o.sample("camblet_policy_reloads_total", { outcome }, n);
  }
  if (gauges.lastReloadSeconds !== undefined) {
    o.metric(
      "camblet_policy_last_reload_timestamp_seconds",
      "gauge",
      "time of the last reload attempt",
    );
    o.sample("camblet_policy_last_reload_timestamp_seconds", {}, gauges.lastReloadSeconds);
  }
  o.metric("camblet_plugin_up", "gauge", "1 when the plugin runs");
  for (const [id, up] of Object.entries(gauges.plugins)) {
    const [kind, name] = id.split("/");
    o.sample("camblet_plugin_up", { kind: kind ?? id, name: name ?? "" }, up);
  }
  o.metric("camblet_trace_subscribers", "gauge", "connected trace clients");
  o.sample("camblet_trace_subscribers", {}, gauges.traceSubscribers);
  o.metric("process_resident_memory_bytes", "gauge", "resident set size of the agent");
  o.sample("process_resident_memory_bytes", {}, Deno.memoryUsage().rss);
  return o.lines.join("\n") + "\n" + registryText;
}
