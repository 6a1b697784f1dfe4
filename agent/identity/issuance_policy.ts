/**
 * The OPA issuance hook's place in issuance: after the built-in checks decided what would be
 * signed, the policy sees it (SPIFFE ID, DNS names, TTL, the requesting task, its labels and the
 * compiled policy entry that assigns the ID) and may deny it with reasons. A denial becomes a
 * refusal certificate like every other refusal; the hook itself fails closed.
 *
 * @module
 */
import type { KernelPayloads, TaskContext } from "../../driver/payloads.ts";
import type { IssuanceDecision, IssuanceHook, IssuanceInput } from "../opa/issuance_hook.ts";
import type { Issue } from "./decide.ts";

/** What {@linkcode issuanceInput} needs. */
export interface IssuanceFacts {
  decision: Pick<Issue, "spiffeId" | "dnsNames" | "ttlMs" | "policyId" | "egressId">;
  /** The requesting task (explain knows only what labels say). */
  task: Partial<TaskContext>;
  labels: readonly string[];
  payloads: KernelPayloads;
  trustDomain: string;
}

/**
 * The policy's input for a decided issuance.
 *
 * @example
 * ```ts ignore
 * hook.decide(issuanceInput({ decision, task, labels, payloads, trustDomain: "acme.test" }));
 * ```
 */
export function issuanceInput(f: IssuanceFacts): IssuanceInput {
  const d = f.decision;
  const input: IssuanceInput = {
    spiffe_id: d.spiffeId,
    trust_domain: f.trustDomain,
    dns_names: [...d.dnsNames],
    ttl_seconds: Math.ceil(d.ttlMs / 1000),
    task: { ...f.task },
    labels: [...f.labels],
  };
  const policy = f.payloads.load_policies.policies.find((p) => p.id === d.policyId);
  const entry = d.egressId === undefined
    ? policy
    : policy?.egress?.find((e) => e.id === d.egressId);
  if (entry) {
    input.policy = {
      id: d.policyId,
      ...(d.egressId !== undefined ? { egress_id: d.egressId } : {}),
      workloadID: entry.certificate.workloadID,
      dnsNames: entry.certificate.dnsNames ?? [],
      ...(entry.certificate.ttl !== undefined ? { ttl: entry.certificate.ttl } : {}),
      connection: entry.connection ?? {},
    };
  }
  return input;
}

/** Runs `hook` on a decided issuance. */
export function checkIssuancePolicy(hook: IssuanceHook, facts: IssuanceFacts): IssuanceDecision {
  return hook.decide(issuanceInput(facts));
}
