/**
 * The issuance decision for one `csr_sign`, as a pure function: given what the CSR asks for, the
 * identities the policies can assign to the requesting process, and the TTL caps, either the exact
 * certificate to sign or the reason to refuse.
 *
 * @module
 */
import type { Assignable } from "../policy/assignable.ts";
import { parseDuration } from "../duration.ts";
import { spiffeIdProblem } from "../../driver/spiffe.ts";
import type { CsrNames } from "../../plugins/sdk/csr.ts";

/** Why a request was refused; also the `reason` label of the refusal metric. */
export type RefusalReason =
  | "bad_request"
  | "bad_csr"
  | "csr_signature"
  | "uri_san_count"
  | "unexpected_san"
  | "not_spiffe_id"
  | "foreign_trust_domain"
  | "not_assignable"
  | "dns_not_allowed"
  | "bad_ttl"
  | "ttl_above_cap"
  /** The OPA issuance policy denied it. */
  | "policy_denied"
  | "labels_unavailable"
  | "ca_rejected"
  | "ca_error"
  | "ca_timeout"
  | "bad_ca_answer"
  | "internal";

/** What to sign. */
export interface Issue {
  ok: true;
  spiffeId: string;
  dnsNames: string[];
  /** Lifetime to ask the CA for: the request (or the policy cap), clamped to the CA maximum. */
  ttlMs: number;
  /** True when the CA maximum shortened it. */
  clamped: boolean;
  policyId: string;
  egressId?: string;
}

/** Why not. */
export interface Refuse {
  ok: false;
  reason: RefusalReason;
  /** `Cannot sign CSR: …`, naming the value. */
  detail: string;
  spiffeId?: string;
}

/** Inputs of {@linkcode decideIssuance}. */
export interface DecisionInput {
  names: CsrNames;
  /** The kernel's `ttl` (the matched policy's, e.g. `"3600s"`); absent when the policy has none. */
  requestedTtl?: string;
  trustDomain: string;
  /** The policy entries that can give the requesting process this SPIFFE ID. */
  candidates: (spiffeId: string) => readonly Assignable[];
  /** `--default-cert-ttl`: the cap for policies without a ttl. */
  defaultTtlMs: number;
  /** The CA's maximum. */
  caMaxTtlMs: number;
}

function refuse(reason: RefusalReason, detail: string, spiffeId?: string): Refuse {
  const r: Refuse = { ok: false, reason, detail: `Cannot sign CSR: ${detail}` };
  if (spiffeId !== undefined) r.spiffeId = spiffeId;
  return r;
}

function ttlMs(text: string): number | undefined {
  try {
    const ms = parseDuration(text);
    return ms > 0 && Number.isFinite(ms) ? ms : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Decides one request.
 *
 * - exactly one URI SAN, a SPIFFE ID in the agent's trust domain; no IP/e-mail SANs;
 * - the ID must be assignable to the process by some policy (or egress entry), and every DNS SAN
 *   must be among that entry's `dnsNames`;
 * - the requested TTL must not exceed that entry's cap (its `ttl`, else `defaultTtlMs`); the TTL
 *   used is then clamped to the CA maximum.
 *
 * @example
 * ```ts
 * import { decideIssuance } from "./decide.ts";
 * decideIssuance({
 *   names: { uris: ["spiffe://other/web"], dnsNames: [], others: [] },
 *   trustDomain: "acme.test", candidates: () => [], defaultTtlMs: 86_400_000, caMaxTtlMs: 86_400_000,
 * }).ok; // false: foreign_trust_domain
 * ```
 */
export function decideIssuance(input: DecisionInput): Issue | Refuse {
  const { names } = input;
  if (names.uris.length !== 1) {
    return refuse(
      "uri_san_count",
      `it has ${names.uris.length} URI SANs (${
        names.uris.map((u) => `"${u}"`).join(", ") || "none"
      }); exactly one SPIFFE ID is required`,
    );
  }
  const spiffeId = names.uris[0]!;
  if (names.others.length > 0) {
    return refuse("unexpected_san", `SANs ${names.others.join(", ")} are not allowed`, spiffeId);
  }
  const problem = spiffeIdProblem(spiffeId);
  if (problem) return refuse("not_spiffe_id", `URI SAN ${problem}`, spiffeId);
  const td = spiffeId.slice("spiffe://".length).split("/")[0]!;
  if (td !== input.trustDomain) {
    return refuse(
      "foreign_trust_domain",
      `URI SAN "${spiffeId}" is outside trust domain "${input.trustDomain}"`,
      spiffeId,
    );
  }
  const candidates = input.candidates(spiffeId);
  if (candidates.length === 0) {
    return refuse(
      "not_assignable",
      `no loaded policy assigns "${spiffeId}" to the requesting process`,
      spiffeId,
    );
  }
  const dnsOk = candidates.filter((c) => names.dnsNames.every((d) => c.dnsNames.includes(d)));
  if (dnsOk.length === 0) {
    const allowed = [...new Set(candidates.flatMap((c) => c.dnsNames))];
    return refuse(
      "dns_not_allowed",
      `DNS SANs ${
        names.dnsNames.map((d) => `"${d}"`).join(", ")
      } are not all allowed for "${spiffeId}" (allowed: ${
        allowed.map((d) => `"${d}"`).join(", ") || "none"
      })`,
      spiffeId,
    );
  }
  let requested: number | undefined;
  if (input.requestedTtl !== undefined) {
    requested = ttlMs(input.requestedTtl);
    if (requested === undefined) {
      return refuse("bad_ttl", `TTL "${input.requestedTtl}" is not a positive duration`, spiffeId);
    }
  }
  const capOf = (c: Assignable) =>
    (c.ttl !== undefined ? ttlMs(c.ttl) : undefined) ?? input.defaultTtlMs;
  const chosen = dnsOk.find((c) => requested === undefined || requested <= capOf(c));
  if (!chosen) {
    const cap = Math.max(...dnsOk.map(capOf));
    return refuse(
      "ttl_above_cap",
      `TTL "${input.requestedTtl}" is above the cap of ${cap / 1000}s for "${spiffeId}"`,
      spiffeId,
    );
  }
  const wanted = requested ?? capOf(chosen);
  const issue: Issue = {
    ok: true,
    spiffeId,
    dnsNames: [...names.dnsNames],
    ttlMs: Math.min(wanted, input.caMaxTtlMs),
    clamped: wanted > input.caMaxTtlMs,
    policyId: chosen.policyId,
  };
  if (chosen.egressId !== undefined) issue.egressId = chosen.egressId;
  return issue;
}
