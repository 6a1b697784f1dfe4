/**
 * `camblet-agent sources`: the configured policy sources and their state, from the running agent
 * (control socket), or, with `--check`, by fetching and validating every source once now.
 *
 * @module
 */
import type { Command } from "commander";
import { ControlClient } from "../control/client.ts";
import { ValidationError } from "../errors.ts";
import { PolicySources } from "../sources/policy_sources.ts";
import { type SourceSpec, sourceSpecs } from "../sources/spec.ts";
import type { SourcesStatus, SourceStatus } from "../sources/status.ts";
import type { AgentConfig } from "../config/schema.ts";
import { addPolicyOptions, outputFormat, resolveConfig, usageError } from "./options.ts";

const HELP = `
Description:
  Lists the policy sources: plugins.policySource[] in the configuration (file, git, http) and,
  for Camblet users, the implicit "file(paths)" source of --policies-path and --services-path.
  For each: its state (ok, failing, rejected, starting), the revision in force (a git commit, a
  bundle's manifest revision or ETag, a digest of the files), when it last succeeded and its
  last error with every problem ("source: file:line: item N: field: reason").

  The state comes from the running agent over its control socket. With --check the sources are
  fetched once now, in this process, validated and merged exactly as the agent would, without
  touching the kernel: a way to test a repository, a bundle server or a signing key before
  rolling it out.

Exit status:
  0 listed (with --check: every source is ok), 1 a source failed or is invalid (--check), or the
  configuration is invalid, 2 usage error

Examples:
  camblet-agent sources
  camblet-agent sources --check
  camblet-agent sources --check --output json | jq '.sources[] | {id, state, revision}'
`;

/** A configured source's location, from its raw config (credentials left out). */
export function configuredLocation(spec: SourceSpec): string {
  const c = spec.selection.config as Record<string, unknown>;
  const strip = (u: unknown) => String(u ?? "").replace(/\/\/[^/@]*@/, "//");
  const list = (v: unknown) => (Array.isArray(v) ? v : v === undefined ? [] : [v]).map(String);
  if (spec.type === "git") {
    return `${strip(c["url"])}#${c["ref"] ?? "HEAD"}${c["dir"] ? `:${c["dir"]}` : ""}`;
  }
  if (spec.type === "http") return strip(c["url"]);
  return [...list(c["policies"]), ...list(c["services"]), ...list(c["wasm"])].join(", ");
}

function when(iso: string | undefined): string {
  return iso ? iso.replace(/\.\d+Z$/, "Z") : "never";
}

function short(revision: string | undefined): string {
  if (!revision) return "-";
  return /^[0-9a-f]{40,64}$/.test(revision) ? revision.slice(0, 12) : revision;
}

/** The readable form of the sources' status. */
export function formatSources(s: SourcesStatus, summary?: string): string {
  const lines: string[] = [];
  lines.push(
    `policy set revision ${s.revision}, applied ${when(s.appliedAt)}${
      summary ? `: ${summary}` : ""
    }`,
  );
  if (s.issuance) {
    lines.push(
      `issuance policy: ${s.issuance.path} (${s.issuance.entrypoint}) from ${s.issuance.source} ` +
        `revision ${short(s.issuance.revision)}`,
    );
  }
  if (s.audit) {
    lines.push(
      `audit rules: ${s.audit.kind} ${s.audit.id} from ${s.audit.source} revision ${
        short(s.audit.revision)
      }`,
    );
  }
  const rows = [["SOURCE", "STATE", "REVISION", "LAST SUCCESS", "LOCATION"]];
  for (const x of s.sources) {
    rows.push([
      x.id + (x.optional ? " (optional)" : ""),
      x.state,
      short(x.revision),
      when(x.lastSuccessAt),
      x.location,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows.map((r) =>
    r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i]!)).join("  ")
  );
  lines.push(...table);
  for (const x of s.sources) {
    if (!x.lastError || x.state === "ok") continue;
    const rev = x.lastError.revision ? ` revision ${short(x.lastError.revision)}` : "";
    lines.push(`${x.id}: last error ${when(x.lastError.at)}${rev}:`);
    for (const p of x.lastError.problems) lines.push(`    ${p}`);
  }
  for (const w of s.warnings) lines.push(`warning: ${w}`);
  return lines.join("\n");
}

function configuredOnly(specs: readonly SourceSpec[], why: string): SourcesStatus {
  const sources: SourceStatus[] = specs.map((spec) => ({
    id: spec.id,
    type: spec.type,
    location: configuredLocation(spec),
    optional: spec.optional,
    state: "unknown",
    consecutiveFailures: 0,
    checks: {},
    items: { policies: 0, services: 0, issuancePolicy: false },
    lastError: { at: new Date().toISOString(), problems: [why] },
  }));
  return { revision: 0, appliedAt: "", warnings: [], sources };
}

async function live(socket: string): Promise<SourcesStatus | string> {
  const client = new ControlClient(socket);
  try {
    const status = await client.json<{ sources?: SourcesStatus }>("/v1/status");
    return status.sources ?? "the running agent does not report policy sources";
  } catch (e) {
    return (e as Error).message;
  } finally {
    client.close();
  }
}

async function check(
  specs: SourceSpec[],
  trustDomain: string,
  timeoutMs: number,
  audit: AgentConfig["audit"],
) {
  const sources = await PolicySources.start({
    specs,
    trustDomain,
    strict: false,
    startTimeoutMs: timeoutMs,
    // Delivered audit rules are compiled as the agent would, when its audit is on.
    ...(audit.enabled
      ? {
        loadAudit: async (a, where) =>
          (await import("../audit/delivered_rules.ts")).loadRuleFiles(a.files, where, audit.opa),
      }
      : {}),
  });
  try {
    const s = sources.current;
    const egress = s.payloads.load_policies.policies.reduce(
      (n, p) => n + (p.egress?.length ?? 0),
      0,
    );
    const summary =
      `${s.payloads.load_policies.policies.length} policies (${egress} egress entries), ` +
      `${Object.keys(s.payloads.load_sd_info).length} service addresses`;
    return { status: sources.status(), summary, payloads: s.payloads };
  } finally {
    await sources.dispose();
  }
}

/** Registers `sources`. */
export function registerSources(program: Command): void {
  addPolicyOptions(
    program.command("sources")
      .description("list the policy sources (file, git, http) and their state"),
    ["--control-socket"],
  )
    .option("--check", "fetch and validate every source once now, without the agent")
    .option("--timeout <seconds>", "with --check: longest wait per source (default 60)")
    .option("-o, --output <format>", "text or json", "text")
    .addHelpText("after", HELP)
    .action(async (opts: { check?: boolean; timeout?: string; output?: string }, cmd: Command) => {
      const format = outputFormat(cmd, opts.output, ["text", "json"] as const);
      const loaded = await resolveConfig(cmd);
      const { specs, problems } = sourceSpecs(loaded);
      if (problems.length) throw new ValidationError("Cannot read the policy sources", problems);
      const timeoutMs = Number(opts.timeout ?? 60) * 1000;
      if (!(timeoutMs > 0)) {
        throw usageError(
          cmd,
          `--timeout must be a positive number of seconds, got "${opts.timeout}"`,
        );
      }
      if (opts.check) {
        const r = await check(
          specs,
          loaded.config.agent.trustDomain,
          timeoutMs,
          loaded.config.agent.audit,
        );
        console.log(
          format === "json"
            ? JSON.stringify({ ...r.status, summary: r.summary }, null, 2)
            : formatSources(r.status, r.summary),
        );
        const bad = r.status.sources.filter((s) => s.state !== "ok");
        if (bad.length) {
          throw new Error(
            `${bad.length} of ${r.status.sources.length} policy sources failed: ${
              bad.map((s) => s.id).join(", ")
            }`,
          );
        }
        return;
      }
      const got = await live(loaded.config.agent.controlSocket);
      if (typeof got === "string") {
        console.error(
          `note: ${got}; showing the configured sources (use --check to fetch them now)`,
        );
        const s = configuredOnly(specs, "not checked: the agent's state is not available");
        console.log(format === "json" ? JSON.stringify(s, null, 2) : formatSources(s));
        return;
      }
      console.log(format === "json" ? JSON.stringify(got, null, 2) : formatSources(got));
    });
}
