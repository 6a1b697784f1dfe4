/**
 * Renders an `explain` result as text (for people) or JSON (for scripts).
 *
 * @module
 */
import type { SelectorSet } from "../../driver/payloads.ts";
import type { Candidate, ConnectionInput, MatchResult } from "../policy/match.ts";
import type { PolicyProvenance } from "./load_payloads.ts";

/** Everything `explain` prints. */
export interface ExplainContext {
  conn: ConnectionInput;
  result: MatchResult;
  provenance: Record<string, PolicyProvenance>;
  /** `agent.defaultCertTTL`: what the agent signs for when the policy has no ttl. */
  defaultTtl: string;
  policyCount: number;
}

/** How many non-matching policies are shown. */
const CLOSEST = 5;

function where(provenance: Record<string, PolicyProvenance>, id: string): string | undefined {
  const p = provenance[id];
  if (!p) return undefined;
  let s = `${p.file}${p.line !== undefined ? `:${p.line}` : ""} item ${p.item}`;
  if (p.egress !== undefined) s += ` egress ${p.egress}`;
  return s;
}

function name(ctx: ExplainContext, id: string, position: number, kind = "policy"): string {
  const w = where(ctx.provenance, id);
  return `${kind ? `${kind} ` : ""}#${position} ${w ?? `id ${id}`}`;
}

function selector(sel: SelectorSet | undefined): string {
  const keys = Object.keys(sel ?? {});
  return keys.length ? `{${keys.join(", ")}}` : "{} (matches everything)";
}

function endpoint(ip: string | undefined, port: number | undefined): string {
  const host = ip === undefined ? "?" : ip.includes(":") ? `[${ip}]` : ip;
  return `${host}:${port ?? "?"}`;
}

function ttlLine(ctx: ExplainContext): string {
  const { result } = ctx;
  if (result.ttl === undefined) {
    return `${ctx.defaultTtl} (no ttl in the policy: the agent's default, agent.defaultCertTTL)`;
  }
  const fromEgress = result.egress?.certificate.ttl !== undefined;
  return `${result.ttl} (from the ${fromEgress ? "egress entry" : "policy"})`;
}

function verdict(ctx: ExplainContext, c: Candidate): string {
  const chosen = ctx.result;
  switch (c.verdict) {
    case "chosen":
      return "chosen";
    case "lower-position":
      return `lost: position ${c.position} > ${chosen.policy!.position}`;
    case "lower-egress-position":
      return `lost: egress position ${c.egressPosition} > ${chosen.egress!.position}`;
    case "egress-preferred":
      return c.policyId === chosen.policy?.id
        ? "its egress entry applies (see above)"
        : "ignored: a policy with a matching egress entry exists, and the kernel picks from those first";
    case "tie":
      return "lost a tie: same positions as the chosen one (the kernel takes the first)";
  }
}

function candidateLine(ctx: ExplainContext, c: Candidate): string[] {
  const who = c.egressId !== undefined
    ? `${name(ctx, c.egressId, c.egressPosition!, "egress")} of policy #${c.position}`
    : name(ctx, c.policyId, c.position);
  const lines = [`  - ${who}: ${verdict(ctx, c)}`];
  const sels = c.egressSelectors ?? c.selectors;
  lines.push(`      matched ${sels.map(selector).join(" and ")}`);
  for (const m of c.egressMisses ?? []) {
    const why = m.missing
      ? `the destination's labels lack ${m.missing.join(", ")}`
      : "no destination service labels (inbound, or destination IP not given)";
    lines.push(
      `      egress #${m.position} ${
        where(ctx.provenance, m.egressId) ?? ""
      } did not match: ${why}`,
    );
  }
  return lines;
}

/** The text report. */
export function explainText(ctx: ExplainContext): string {
  const { conn, result: r } = ctx;
  const out: string[] = [];
  out.push("Connection");
  out.push(`  direction        ${conn.direction}`);
  out.push(`  source           ${endpoint(conn.sourceIp, conn.sourcePort)}`);
  out.push(`  destination      ${endpoint(conn.destinationIp, conn.destinationPort)}`);
  if (r.service) {
    out.push(
      r.service.key !== undefined
        ? `  service entry    ${r.service.key} (labels: ${r.service.labels?.join(", ") || "none"})`
        : `  service entry    none (looked up ${r.service.tried.join(", then ")})`,
    );
  }
  out.push("", "Labels the kernel evaluates");
  for (const l of [...r.input.labels].sort()) out.push(`  ${l}`);
  out.push("");
  if (r.reason === "no-service") {
    out.push(
      `Result: not intercepted: ${conn.destinationIp} is not in the service table, so the kernel ` +
        "leaves this outbound connection alone (plain TCP, no labels asked)",
    );
  } else if (!r.intercepted) {
    out.push("Result: no policy matches: the connection stays plain TCP");
  } else {
    out.push(`Result: intercepted, ${r.mtls ? "mutual TLS" : "TLS without client certificates"}`);
    out.push(`  policy           ${name(ctx, r.policy!.id, r.policy!.position, "")}`);
    out.push(`    matched        ${selector(r.matchedSelector)}`);
    if (r.egress) {
      out.push(`  egress           ${name(ctx, r.egress.id, r.egress.position, "")}`);
      out.push(`    matched        ${selector(r.matchedEgressSelector)}`);
    }
    out.push(`  SPIFFE ID        ${r.spiffeId}`);
    const template = r.egress?.certificate.workloadID ?? r.policy!.certificate.workloadID;
    out.push(
      `  workloadID       ${template}${template === r.workloadID ? "" : ` -> ${r.workloadID}`}`,
    );
    for (const p of r.placeholders) {
      out.push(
        p.problem === undefined
          ? `    ${p.placeholder} = ${p.value} (from the ${
            p.from === "remote" ? "destination service's" : "connection's"
          } labels)`
          : `    ${p.placeholder} stays: ${
            p.problem === "missing"
              ? `no label ${p.name}`
              : `${p.values!.length} values for ${p.name} (${p.values!.join(", ")})`
          }`,
      );
    }
    const mtls = r.egress?.connection?.mtls ?? r.policy!.connection?.mtls;
    out.push(`  mTLS             ${r.mtls ? "on" : "off"}${mtls ? ` (${mtls})` : ""}`);
    out.push(`  passthrough      ${r.passthrough ? "yes" : "no"}`);
    out.push(`  http header      ${r.http ? "yes (X-Camblet-Spiffe-ID)" : "no"}`);
    out.push(`  TTL              ${ttlLine(ctx)}`);
    out.push(`  DNS names        ${r.dnsNames.join(", ") || "none"}`);
    out.push(
      `  allowed peers    ${r.allowedSPIFFEIDs.join(", ") || "any peer the trust bundle accepts"}`,
    );
    out.push(`  cert cache key   ${r.certCacheKey}`);
    if (r.unresolved.length) {
      out.push(
        "",
        `Warning: ${r.unresolved.join(", ")} stay${r.unresolved.length === 1 ? "s" : ""} in the ` +
          "SPIFFE ID: the kernel asks for a certificate with the placeholder in it.",
      );
    }
  }
  if (r.candidates.length) {
    out.push("", "Why: the matching policies and egress entries");
    for (const c of r.candidates) out.push(...candidateLine(ctx, c));
  }
  const misses = r.misses ?? [];
  if (misses.length) {
    out.push(
      "",
      `Closest policies that did not match (${
        Math.min(CLOSEST, misses.length)
      } of ${misses.length})`,
    );
    for (const m of misses.slice(0, CLOSEST)) {
      out.push(
        `  - ${name(ctx, m.policyId, m.position)}: ${
          m.missing.length ? `lacks ${m.missing.join(", ")}` : "has no selectors"
        }`,
      );
    }
  } else if (ctx.policyCount === 0) {
    out.push("", "No policies are loaded (check --policies-path).");
  }
  if (r.notes.length) {
    out.push("", "Notes");
    for (const n of r.notes) out.push(`  - ${n}`);
  }
  return out.join("\n");
}

/** The JSON report: the matcher's result plus where each policy came from. */
export function explainJson(ctx: ExplainContext): Record<string, unknown> {
  const { result: r } = ctx;
  const src = (id: string | undefined) => id === undefined ? undefined : ctx.provenance[id] ?? null;
  const misses = r.misses ?? [];
  return {
    connection: ctx.conn,
    intercepted: r.intercepted,
    reason: r.reason,
    spiffeId: r.spiffeId ?? null,
    workloadID: r.workloadID ?? null,
    mtls: r.mtls,
    passthrough: r.passthrough,
    http: r.http,
    ttl: r.ttl ?? null,
    ttlUsed: r.intercepted ? r.ttl ?? ctx.defaultTtl : null,
    dnsNames: r.dnsNames,
    allowedSPIFFEIDs: r.allowedSPIFFEIDs,
    policy: r.policy
      ? { id: r.policy.id, position: r.policy.position, source: src(r.policy.id) }
      : null,
    egress: r.egress
      ? { id: r.egress.id, position: r.egress.position, source: src(r.egress.id) }
      : null,
    matchedSelector: r.matchedSelector ?? null,
    matchedEgressSelector: r.matchedEgressSelector ?? null,
    placeholders: r.placeholders,
    unresolved: r.unresolved,
    certCacheKey: r.certCacheKey ?? null,
    input: r.input,
    service: r.service ?? null,
    candidates: r.candidates.map((c) => ({
      ...c,
      source: src(c.egressId ?? c.policyId),
    })),
    closestMisses: misses.slice(0, CLOSEST).map((m) => ({ ...m, source: src(m.policyId) })),
    notMatched: misses.length,
    notes: r.notes,
  };
}
