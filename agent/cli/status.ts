/**
 * `camblet-agent status`: asks the running agent over its control socket and prints its state.
 *
 * @module
 */
import type { Command } from "commander";
import { formatRuntimeGuard } from "./status_runtime.ts";
import { formatAudit } from "./status_audit.ts";
import { ControlClient } from "../control/client.ts";
import type { AgentStatus } from "../daemon/status.ts";
import { outputFormat, resolveConfig } from "./options.ts";

const HELP = `
Description:
  Shows the running agent's state: readiness, the data plane (kernel module or proxy), trust
  domain, policy revision and the last reload (with every rejected item), the kernel requests
  answered with their latency and deadline misses, or the proxy's listeners, protected
  destinations and connections, plugins and trace clients. Reads the control socket (root-only).

Exit status:
  0 the agent is ready, 1 it is not ready or cannot be reached, 2 usage error

Examples:
  camblet-agent status
  camblet-agent status --output json
  camblet-agent status --control-socket /run/camblet/agent.sock
`;

/** Resolves the control socket path: flag, else config/env, else the default. */
export async function controlSocketPath(cmd: Command): Promise<string> {
  const loaded = await resolveConfig(cmd);
  return loaded.config.agent.controlSocket;
}

function duration(s: number): string {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${m}m` : m > 0 ? `${m}m${s % 60}s` : `${s}s`;
}

function ms(v: number): string {
  return Number.isFinite(v) ? `≤${v} ms` : "> 1 s";
}

/** The readable form of a status document. */
export function formatStatus(s: AgentStatus): string {
  const lines: string[] = [];
  const state = s.ready ? "ready" : `NOT READY (${s.readyReason ?? "unknown"})`;
  lines.push(
    `camblet-agent ${s.version} (pid ${s.pid}), up ${duration(s.uptimeSeconds)}: ${state}`,
  );
  const row = (k: string, v: string) => lines.push(`  ${k.padEnd(16)}${v}`);
  const plane = s.dataPlane;
  if (plane?.kind === "proxy") {
    row("data plane", `proxy: eBPF steering + mTLS proxy (${plane.reason})`);
  } else {
    row("data plane", `kernel module ${s.device}${plane ? ` (${plane.reason})` : ""}`);
  }
  row(
    "control socket",
    s.controlSocket + (s.metricsAddress ? `; metrics on tcp ${s.metricsAddress}` : ""),
  );
  row("trust domain", s.trustDomain);
  row(
    "policies",
    `${s.policy.policies} (revision ${s.policy.revision}); ${s.policy.services} service address${
      s.policy.services === 1 ? "" : "es"
    }`,
  );
  const r = s.policy.lastReload;
  if (r) {
    row(
      "last reload",
      `${r.at} (${r.reason}): ${r.outcome}${
        r.changed.length ? `, pushed ${r.changed.join(", ")}` : ""
      }`,
    );
    for (const p of r.problems) lines.push(`    rejected: ${p}`);
  }
  for (const w of s.policy.warnings) lines.push(`    warning: ${w}`);
  if (s.kernel) {
    const k = s.kernel;
    for (const [command, byOutcome] of Object.entries(k.requests)) {
      const total = Object.values(byOutcome).reduce((a, b) => a + b, 0);
      const outcomes = Object.entries(byOutcome).map(([o, n]) => `${o} ${n}`).join(", ");
      const lat = k.latency[command];
      const l = lat ? `; latency p50 ${ms(lat.p50Ms)}, p99 ${ms(lat.p99Ms)}` : "";
      row(command, `${total} (${outcomes})${l}`);
    }
    row(
      "deadline misses",
      `${k.deadlineMisses}; outstanding ${k.outstanding}; max latency ${k.maxLatencyMs} ms`,
    );
    const bad = Object.entries(k.malformed).map(([kind, n]) => `${kind} ${n}`).join(", ");
    if (bad) row("malformed", bad);
    if (k.pushesWaiting > 0) {
      row(
        "waiting pushes",
        `${k.pushesWaiting} (the kernel's write budget is used up until its next read)`,
      );
    }
  }
  if (s.proxy) {
    const p = s.proxy;
    row("listeners", `outbound ${p.outbound.join(" ")}; inbound ${p.inbound.join(" ")}`);
    row(
      "protected",
      `${p.protectedDestinations} service address${
        p.protectedDestinations === 1 ? "" : "es"
      }; local ports ${p.protectedPorts.join(", ") || "(none)"}; ` +
        (p.failClosed ? "fail-closed" : "fail-open when the agent stops"),
    );
    const conns = Object.entries(p.connections).map(([k, n]) => `${k} ${n}`).join(", ");
    row("connections", `${p.activeConnections} active; ${conns || "none yet"}`);
  }
  const plugins = Object.entries(s.plugins).map(([id, up]) => {
    const why = up ? undefined : s.pluginHealth?.[id]?.message;
    return `${id} ${up ? "up" : "DOWN"}${why ? ` (${why})` : ""}`;
  }).join(", ");
  row("plugins", plugins || "(none)");
  row("trace clients", String(s.traceSubscribers));
  lines.push(...formatRuntimeGuard(s.runtimeGuard));
  lines.push(...formatAudit(s.audit));
  return lines.join("\n");
}

/** Registers `status`. */
export function registerStatus(program: Command): void {
  program.command("status")
    .description("show the running agent's state (over its control socket)")
    .option(
      "--control-socket <path>",
      "the agent's control socket (default: /run/camblet/agent.sock)",
    )
    .option("-o, --output <format>", "text or json", "text")
    .addHelpText("after", HELP)
    .action(async (opts: { output?: string }, cmd: Command) => {
      const format = outputFormat(cmd, opts.output, ["text", "json"] as const);
      const client = new ControlClient(await controlSocketPath(cmd));
      try {
        const s = await client.json<AgentStatus>("/v1/status");
        console.log(format === "json" ? JSON.stringify(s, null, 2) : formatStatus(s));
        if (!s.ready) throw new Error(`the agent is not ready (${s.readyReason ?? "unknown"})`);
      } finally {
        client.close();
      }
    });
}
