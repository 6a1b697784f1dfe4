/**
 * The state of the policy sources, for `/v1/status`, `/metrics` and `camblet-agent sources`: per
 * source the revision in force and when it was accepted, the last check, the last success and the
 * last error (a failed fetch or a rejected revision, with every problem).
 *
 * @module
 */

/** How a source is doing. */
export type SourceState =
  /** No check has finished yet. */
  | "starting"
  /** The last check succeeded and its content is in force. */
  | "ok"
  /** The last check failed (unreachable, refused content); the last good revision stays. */
  | "failing"
  /** The last delivered revision was invalid; the last good revision stays. */
  | "rejected"
  /** Not known here (the agent's state could not be read). */
  | "unknown";

/** The last error of a source. */
export interface SourceError {
  at: string;
  /** The revision that was rejected (absent when fetching failed). */
  revision?: string;
  /** Every problem, formatted `source: file:line: item N: field: reason`. */
  problems: string[];
}

/** One source. */
export interface SourceStatus {
  id: string;
  type: string;
  location: string;
  optional: boolean;
  state: SourceState;
  /** Revision in force (absent when nothing was ever accepted). */
  revision?: string;
  /** When the revision in force was accepted. */
  acceptedAt?: string;
  lastCheckAt?: string;
  /** The last check that fetched successfully (new revision accepted, or unchanged). */
  lastSuccessAt?: string;
  lastError?: SourceError;
  /** Failed or rejected checks in a row. */
  consecutiveFailures: number;
  /** Checks by outcome: `delivery`, `unchanged`, `failure`, `rejected`. */
  checks: Record<string, number>;
  /** What the revision in force contributes. */
  items: { policies: number; services: number; issuancePolicy: boolean; auditRules?: boolean };
}

/** All sources and the merged set in force. */
export interface SourcesStatus {
  /** Increases every time the merged set changes. */
  revision: number;
  appliedAt: string;
  /** The OPA issuance policy in force, if any. */
  issuance?: { source: string; revision: string; path: string; entrypoint: string };
  /** The syscall audit rules delivered by a source, if any (content id of their files). */
  audit?: { source: string; revision: string; id: string; kind: string };
  /** Merge warnings (identical policies, addresses described by several sources). */
  warnings: string[];
  sources: SourceStatus[];
}

function esc(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

/**
 * Prometheus text for the sources (appended to the agent's `/metrics`).
 *
 * @example
 * ```ts
 * import { sourcesMetrics } from "./status.ts";
 * sourcesMetrics({ revision: 1, appliedAt: "", warnings: [], sources: [] });
 * ```
 */
export function sourcesMetrics(s: SourcesStatus): string {
  const lines: string[] = [];
  const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) lines.push(`${name}${labels} ${v}`);
  };
  const l = (o: Record<string, string>) =>
    `{${Object.entries(o).map(([k, v]) => `${k}="${esc(v)}"`).join(",")}}`;
  const seconds = (iso: string | undefined) => iso ? Date.parse(iso) / 1000 : 0;
  metric("camblet_policy_set_revision", "gauge", "revision of the merged policy set in force", [
    ["", s.revision],
  ]);
  metric(
    "camblet_policy_source_up",
    "gauge",
    "1 when the source's last check succeeded and its content is in force",
    s.sources.map((x) => [l({ source: x.id, type: x.type }), x.state === "ok" ? 1 : 0]),
  );
  metric(
    "camblet_policy_source_revision_info",
    "gauge",
    "the revision in force per source",
    s.sources.filter((x) => x.revision).map((x) => [
      l({ source: x.id, revision: x.revision! }),
      1,
    ]),
  );
  metric(
    "camblet_policy_source_last_success_timestamp_seconds",
    "gauge",
    "when the source last fetched successfully",
    s.sources.map((x) => [l({ source: x.id }), seconds(x.lastSuccessAt)]),
  );
  metric(
    "camblet_policy_source_last_error_timestamp_seconds",
    "gauge",
    "when the source last failed or delivered an invalid revision",
    s.sources.map((x) => [l({ source: x.id }), seconds(x.lastError?.at)]),
  );
  metric(
    "camblet_policy_source_checks_total",
    "counter",
    "checks by outcome (delivery, unchanged, failure, rejected)",
    s.sources.flatMap((x) =>
      Object.entries(x.checks).map(([outcome, n]): [string, number] => [
        l({ source: x.id, outcome }),
        n,
      ])
    ),
  );
  return lines.join("\n") + "\n";
}
