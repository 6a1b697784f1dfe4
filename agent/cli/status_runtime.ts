/**
 * The runtime guard's lines in `camblet-agent status`.
 *
 * @module
 */
import type { DaemonGuardStatus } from "../guard/daemon_guard.ts";

/** Rows for `status` (none when the agent reports no guard). */
export function formatRuntimeGuard(g: DaemonGuardStatus | undefined): string[] {
  if (!g) return [];
  const row = (k: string, v: string) => `  ${k.padEnd(16)}${v}`;
  if (g.state !== "running") return [row("runtime guard", `${g.state.toUpperCase()}: ${g.reason}`)];
  const enforce = g.rulesets.filter((r) => r.mode === "enforce").length;
  const lines = [
    row(
      "runtime guard",
      `${g.programs.length} BPF LSM programs attached; ${g.rulesets.length} rule set` +
        `${g.rulesets.length === 1 ? "" : "s"} (${enforce} enforce, ` +
        `${g.rulesets.length - enforce} audit); canary ${g.canary}` +
        (g.pinned ? `; fail-closed (pinned in ${g.pinned})` : "; detached when the agent stops"),
    ),
    row(
      "confined",
      `${g.confined.cgroups} cgroup${g.confined.cgroups === 1 ? "" : "s"}, ` +
        `${g.confined.tasks} process${g.confined.tasks === 1 ? "" : "es"} keyed by the agent ` +
        "(their children inherit)",
    ),
    row(
      "guard events",
      `denied ${g.events.denied}, audited ${g.events.audited}, bound at exec ${g.events.bound}, ` +
        `lost ${g.events.lost}; ${g.events.subscribers} stream client` +
        `${g.events.subscribers === 1 ? "" : "s"}`,
    ),
  ];
  return lines;
}
