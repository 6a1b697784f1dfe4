/**
 * The kernel's policy decision, in pure TypeScript: camblet-driver's socket.rego (which policies
 * and egress entries match) and opa.c (which one wins, and how its fields combine). Protocol doc
 * §3.2; camblet-compat §2.2. Used by `explain`, and by tests to predict what the kernel does.
 *
 * Rules, in the kernel's order:
 * 1. A policy matches if any of its selector sets is a subset of the input label keys (an empty
 *    set matches everything; only keys count).
 * 2. Egress entries of matching policies match if a selector set is a subset of the destination
 *    service's labels; there are none for inbound connections.
 * 3. The kernel picks from the matches with an egress entry if there are any, else from the plain
 *    policy matches: lowest `position`, then lowest egress `position`.
 * 4. Every field of the egress entry beats the parent's; mTLS is on unless `mtls: DISABLE`.
 * 5. `[name]` placeholders in workloadID are substituted (see match_placeholders.ts).
 *
 * @module
 */
import type {
  KernelEgress,
  KernelPayloads,
  KernelPolicy,
  SelectorSet,
} from "../../driver/payloads.ts";
import {
  buildKernelInput,
  type ConnectionInput,
  type KernelInput,
  type ServiceLookup,
} from "./match_input.ts";
import { indexLabels, type PlaceholderReport, substituteWorkloadId } from "./match_placeholders.ts";

export type { ConnectionInput, KernelInput, ServiceLookup } from "./match_input.ts";
export type { PlaceholderReport } from "./match_placeholders.ts";

/** Why a matching policy or egress entry was or was not picked. */
export type Verdict =
  | "chosen"
  /** Another candidate had a lower policy position. */
  | "lower-position"
  /** Same policy; another of its egress entries had a lower position. */
  | "lower-egress-position"
  /** Plain policy match ignored: some policy had a matching egress entry, and those come first. */
  | "egress-preferred"
  /** Same position and egress position as the chosen one (only hand-made payloads): array order. */
  | "tie";

/** An egress entry of a matching policy that did not match the destination. */
export interface EgressMiss {
  egressId: string;
  position: number;
  /** Service labels its closest selector set still needs; absent when there is no service. */
  missing?: string[];
}

/** One matching policy, or one matching (policy, egress) pair. */
export interface Candidate {
  policyId: string;
  position: number;
  egressId?: string;
  egressPosition?: number;
  /** The policy's selector sets that are subsets of the input labels. */
  selectors: SelectorSet[];
  /** The egress entry's selector sets that are subsets of the service labels. */
  egressSelectors?: SelectorSet[];
  verdict: Verdict;
  /** For plain policy candidates: its egress entries that did not match. */
  egressMisses?: EgressMiss[];
}

/** A policy that did not match (trace `"all"` only), with what its closest selector set lacks. */
export interface Miss {
  policyId: string;
  position: number;
  missing: string[];
}

/** The kernel's decision for one input. */
export interface Decision {
  intercepted: boolean;
  policy?: KernelPolicy;
  egress?: KernelEgress;
  /** The selector set the chosen policy matched with (the first one, if several did). */
  matchedSelector?: SelectorSet;
  matchedEgressSelector?: SelectorSet;
  /** False only with `connection.mtls: DISABLE`; true when not intercepted is meaningless. */
  mtls: boolean;
  passthrough: boolean;
  http: boolean;
  ttl?: string;
  dnsNames: string[];
  allowedSPIFFEIDs: string[];
  /** After placeholder substitution. */
  workloadID?: string;
  spiffeId?: string;
  placeholders: PlaceholderReport[];
  /** Placeholders left in workloadID, e.g. `["[k8s:pod:name]"]`. */
  unresolved: string[];
  /** The kernel's certificate cache key: trust domain + ttl + policy id + egress id. */
  certCacheKey?: string;
  /** Every matching policy and (policy, egress) pair with its verdict. */
  candidates: Candidate[];
  /** Non-matching policies, closest first (only with `trace: "all"`). */
  misses?: Miss[];
  notes: string[];
}

/** Result of {@linkcode matchConnection}. */
export interface MatchResult extends Decision {
  /** `no-service`: outbound to a destination not in the service table, never evaluated. */
  reason: "policy" | "egress" | "no-policy" | "no-service";
  input: KernelInput;
  service?: ServiceLookup;
}

/** Options for {@linkcode evaluatePolicies} and {@linkcode matchConnection}. */
export interface MatchOptions {
  /** `"all"` also reports non-matching policies and what they lack (for `explain`). */
  trace?: "matches" | "all";
}

function isSubset(sel: SelectorSet, labels: ReadonlySet<string>): boolean {
  for (const k in sel) if (!labels.has(k)) return false;
  return true;
}

function missingKeys(sels: readonly SelectorSet[], labels: ReadonlySet<string>): string[] {
  let best: string[] | undefined;
  for (const sel of sels) {
    const miss = Object.keys(sel).filter((k) => !labels.has(k)).sort();
    if (!best || miss.length < best.length) best = miss;
  }
  return best ?? [];
}

function labelKeys(labels: Iterable<string> | Record<string, unknown>): Set<string> {
  return new Set(
    Symbol.iterator in labels ? labels as Iterable<string> : Object.keys(labels),
  );
}

interface Pick {
  policy: KernelPolicy;
  egress?: KernelEgress;
  candidate: Candidate;
}

/** Applies opa.c's choice: lowest position, then lowest egress position, first in order. */
function choose(list: Pick[]): Pick {
  let best = list[0]!;
  for (const p of list) {
    if (p.policy.position < best.policy.position) best = p;
  }
  let chosen: Pick | undefined;
  for (const p of list) {
    if (p.policy.position !== best.policy.position) continue;
    if (!chosen || (p.egress?.position ?? 0) < (chosen.egress?.position ?? 0)) chosen = p;
  }
  for (const p of list) {
    if (p === chosen) p.candidate.verdict = "chosen";
    else if (p.policy.position !== chosen!.policy.position) p.candidate.verdict = "lower-position";
    else if (p.egress && p.egress.position !== chosen!.egress?.position) {
      p.candidate.verdict = "lower-egress-position";
    } else p.candidate.verdict = "tie";
  }
  return chosen!;
}

/**
 * Evaluates the kernel's policy for an already built input (labels incl. the kernel's own, and
 * the service's labels as `remote`). Accepts label lists or the kernel's `{"k=v": true}` objects.
 */
export function evaluatePolicies(
  payloads: KernelPayloads,
  input: {
    labels: Iterable<string> | Record<string, unknown>;
    remote?: { labels: Iterable<string> | Record<string, unknown> };
  },
  options: MatchOptions = {},
): Decision {
  const labels = labelKeys(input.labels);
  const remote = input.remote ? labelKeys(input.remote.labels) : undefined;
  const plain: Pick[] = [];
  const withEgress: Pick[] = [];
  const misses: Miss[] = [];
  for (const policy of payloads.load_policies.policies) {
    const first = policy.selectors.findIndex((s) => isSubset(s, labels));
    if (first < 0) {
      if (options.trace === "all") {
        misses.push({
          policyId: policy.id,
          position: policy.position,
          missing: missingKeys(policy.selectors, labels),
        });
      }
      continue;
    }
    const selectors = policy.selectors.slice(first).filter((s) => isSubset(s, labels));
    const candidate: Candidate = {
      policyId: policy.id,
      position: policy.position,
      selectors,
      verdict: "chosen",
    };
    plain.push({ policy, candidate });
    for (const egress of policy.egress ?? []) {
      const eSel = remote ? egress.selectors.filter((s) => isSubset(s, remote)) : [];
      if (eSel.length === 0) {
        const miss: EgressMiss = { egressId: egress.id, position: egress.position };
        if (remote) miss.missing = missingKeys(egress.selectors, remote);
        (candidate.egressMisses ??= []).push(miss);
        continue;
      }
      withEgress.push({
        policy,
        egress,
        candidate: {
          policyId: policy.id,
          position: policy.position,
          egressId: egress.id,
          egressPosition: egress.position,
          selectors,
          egressSelectors: eSel,
          verdict: "chosen",
        },
      });
    }
  }
  const decision: Decision = {
    intercepted: false,
    mtls: false,
    passthrough: false,
    http: false,
    dnsNames: [],
    allowedSPIFFEIDs: [],
    placeholders: [],
    unresolved: [],
    candidates: [],
    notes: [],
  };
  if (options.trace === "all") {
    decision.misses = misses.sort((a, b) =>
      a.missing.length - b.missing.length || a.position - b.position
    );
  }
  if (plain.length === 0) return decision;
  let chosen: Pick;
  if (withEgress.length > 0) {
    chosen = choose(withEgress);
    for (const p of plain) p.candidate.verdict = "egress-preferred";
  } else {
    chosen = choose(plain);
  }
  decision.candidates = [...withEgress, ...plain].map((p) => p.candidate)
    .sort((a, b) => a.position - b.position || (a.egressPosition ?? -1) - (b.egressPosition ?? -1));
  return Object.assign(decision, settle(payloads, chosen, labels, remote));
}

/** opa.c: egress fields beat the parent's, field by field; placeholders substituted. */
function settle(
  payloads: KernelPayloads,
  { policy, egress, candidate }: Pick,
  labels: ReadonlySet<string>,
  remote: ReadonlySet<string> | undefined,
): Partial<Decision> {
  const ec = egress?.certificate;
  const en = egress?.connection;
  const pc = policy.certificate;
  const pn = policy.connection;
  const ttl = ec?.ttl ?? pc.ttl;
  const mtls = en?.mtls ?? pn?.mtls;
  const sub = substituteWorkloadId(
    ec?.workloadID ?? pc.workloadID,
    indexLabels(labels),
    egress && remote ? indexLabels(remote) : undefined,
  );
  const td = payloads.load_config.trust_domain;
  const out: Partial<Decision> = {
    intercepted: true,
    policy,
    matchedSelector: candidate.selectors[0]!,
    mtls: mtls !== "DISABLE",
    passthrough: en?.passthrough ?? pn?.passthrough ?? false,
    http: en?.http ?? pn?.http ?? false,
    dnsNames: [...(ec?.dnsNames ?? pc.dnsNames ?? [])],
    allowedSPIFFEIDs: [...(en?.allowedSPIFFEIDs ?? pn?.allowedSPIFFEIDs ?? [])],
    workloadID: sub.workloadID,
    spiffeId: `spiffe://${td}/${sub.workloadID}`,
    placeholders: sub.placeholders,
    unresolved: sub.unresolved,
    certCacheKey: `${td}${ttl ?? ""}${policy.id}${egress?.id ?? ""}`,
  };
  if (ttl !== undefined) out.ttl = ttl;
  if (egress) {
    out.egress = egress;
    out.matchedEgressSelector = candidate.egressSelectors![0]!;
  }
  if (sub.orderDependent) {
    out.notes = [
      "a substituted label value contains a placeholder: the kernel's result depends on its " +
      "hash order",
    ];
  }
  return out;
}

/**
 * Predicts what the kernel does with a connection: builds its input (kernel-added labels,
 * service lookup) and evaluates the policies.
 *
 * @example
 * ```ts
 * import { matchConnection } from "./match.ts";
 * const r = matchConnection({
 *   load_config: { trust_domain: "acme.test" },
 *   load_sd_info: {},
 *   load_policies: { policies: [{ position: 0, id: "web", selectors: [{ "process:name=python3": true }],
 *     certificate: { workloadID: "web/[process:uid]" } }] },
 * }, { labels: ["process:name=python3", "process:uid=0"], direction: "input" });
 * r.spiffeId; // "spiffe://acme.test/web/0"
 * ```
 */
export function matchConnection(
  payloads: KernelPayloads,
  conn: ConnectionInput,
  options: MatchOptions = {},
): MatchResult {
  const built = buildKernelInput(payloads, conn);
  if (!built.evaluated) {
    const result: MatchResult = {
      reason: "no-service",
      input: built.input,
      intercepted: false,
      mtls: false,
      passthrough: false,
      http: false,
      dnsNames: [],
      allowedSPIFFEIDs: [],
      placeholders: [],
      unresolved: [],
      candidates: [],
      notes: built.notes,
    };
    if (built.service) result.service = built.service;
    return result;
  }
  const decision = evaluatePolicies(payloads, built.input, options);
  const reason = !decision.intercepted ? "no-policy" : decision.egress ? "egress" : "policy";
  const result: MatchResult = {
    ...decision,
    reason,
    input: built.input,
    notes: [...built.notes, ...decision.notes],
  };
  if (built.service) result.service = built.service;
  return result;
}
