/**
 * The syscall audit's lines in `camblet-agent status`.
 *
 * @module
 */
import type { DaemonAuditStatus } from "../audit/daemon_audit.ts";

/** Rows for `status` (one line when the audit is off). */
export function formatAudit(a: DaemonAuditStatus | undefined): string[] {
  if (!a) return [];
  const row = (k: string, v: string) => `  ${k.padEnd(16)}${v}`;
  if (a.state !== "running") return [row("syscall audit", `${a.state.toUpperCase()}: ${a.reason}`)];
  const e = a.events;
  const f = a.prefilter;
  const scoped = (k: string) => f.groups.filter((g) => g.cgroups === k).length;
  const out = f.counters.keptOut;
  const violations = Object.entries(a.violations).map(([r, n]) => `${r} ${n}`).join(", ");
  const sinks = [
    a.sinks.log ? "log" : "",
    a.sinks.file
      ? `file ${a.sinks.file.path}${a.sinks.file.failed ? ` (${a.sinks.file.failed} failed)` : ""}`
      : "",
    a.sinks.webhook
      ? `webhook ${a.sinks.webhook.url} (delivered ${a.sinks.webhook.delivered}, dropped ${a.sinks.webhook.dropped})`
      : "",
    `${a.sinks.stream.subscribers} stream client${a.sinks.stream.subscribers === 1 ? "" : "s"}`,
  ].filter((s) => s !== "");
  const lines = [
    row(
      "syscall audit",
      `${a.programs.length} programs attached; rules from ${a.rules.from} (${a.rules.kind}, ` +
        `${a.rules.id})`,
    ),
    row(
      "audit filter",
      `${f.syscalls.length} syscalls in ${f.groups.length} groups (containers only: ` +
        `${scoped("containers")}, workloads only: ${scoped("workloads")}); host cgroups ` +
        `${f.hostCgroups}` +
        `${f.hostCgroupsOverflow ? ` (+${f.hostCgroupsOverflow} not stored)` : ""}, ` +
        `workload processes ${a.workloads.pushed}; kept out: path ${out.path}, cgroup ` +
        `${out.cgroup}, flags ${out.flags}`,
    ),
    row(
      "audit events",
      `seen ${e.seen}, filtered ${e.filtered} (kept in the kernel), sent ${e.sent}, lost ${e.lost}` +
        `, queue dropped ${e.queueDropped}, judged ${e.judged}, failed ${e.failed}`,
    ),
    row("violations", violations || "none"),
    row("audit sinks", sinks.join(", ")),
  ];
  if (a.lastError) {
    lines.push(row("audit refused", `${a.lastError.at}: ${a.lastError.message.split("\n")[0]}`));
  }
  return lines;
}
