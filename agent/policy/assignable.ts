/**
 * Which SPIFFE identities the loaded policies can give a process. The kernel's `csr_sign` does not
 * say which policy it evaluated, so the identity manager checks that the CSR's SPIFFE ID is one of
 * these for the requesting process.
 *
 * A policy counts when one of its selector sets could match the process for SOME connection the
 * kernel evaluates: an inbound one (any), or an outbound one to an address in the service table
 * (direction `output`, destination IP and port from the entry's key). The selector's non-connection
 * keys must be among the process's labels; its connection keys (`direction`, `source:ip`,
 * `source:port`, `destination:ip`, `destination:port`) must be consistent with that connection.
 * An egress entry counts for each service entry whose labels it matches, on such an outbound
 * connection.
 *
 * Placeholders are substituted as the kernel does. A placeholder for a connection key that no
 * selector or service address fixes becomes a wildcard (`wildcards`): the kernel fills it per
 * connection. Identities with placeholders the kernel would leave in place (no such label, or
 * several values) are skipped: the kernel would ask for an invalid ID. Policy priority is ignored
 * on purpose: a policy shadowed for one connection may win another. The kernel's service lookup quirk (an entry found by prefix in
 * a shared hash bucket, see match_input.ts) is not followed.
 *
 * @module
 */
import type { KernelPayloads, LoadSdInfo, SelectorSet } from "../../driver/payloads.ts";
import { indexLabels, substituteWorkloadId } from "./match_placeholders.ts";

/** An identity a process can be issued, and what issued it. */
export interface Assignable {
  spiffeId: string;
  workloadID: string;
  dnsNames: string[];
  ttl?: string;
  policyId: string;
  egressId?: string;
  /**
   * Connection labels the ID depends on but no selector fixes (e.g. `destination:port`): they
   * stay as `[name]` in `spiffeId` and `workloadID`, and {@linkcode findAssignable} accepts any
   * value the kernel could print for them there.
   */
  wildcards?: string[];
}

/** Label names the kernel adds per connection. */
export const CONNECTION_LABELS: readonly string[] = [
  "direction",
  "source:ip",
  "source:port",
  "destination:ip",
  "destination:port",
];
const CONNECTION = new Set(CONNECTION_LABELS);
/** Stands for a per-connection value we cannot know; turned back into `[name]` afterwards. */
const unknown = (name: string) => `\uE000${name}\uE000`;
const UNKNOWN = /\uE000([^\uE000]*)\uE000/g;

/** What the kernel can print for each connection label (IPs as %pI4 / %pI6). */
const WILDCARD: Record<string, string> = {
  "direction": "(?:input|output)",
  "source:ip": "(?:\\d{1,3}(?:\\.\\d{1,3}){3}|[0-9a-f]{4}(?::[0-9a-f]{4}){7})",
  "destination:ip": "(?:\\d{1,3}(?:\\.\\d{1,3}){3}|[0-9a-f]{4}(?::[0-9a-f]{4}){7})",
  "source:port": "\\d{1,5}",
  "destination:port": "\\d{1,5}",
};

function nameOf(key: string): string {
  const i = key.indexOf("=");
  return i < 0 ? key : key.slice(0, i);
}

/**
 * The connection keys a selector set needs once the process's labels are taken into account, or
 * undefined if a process key is missing or no connection could have the value.
 */
function connectionNeeds(
  sel: SelectorSet,
  proc: ReadonlySet<string>,
): [string, string][] | undefined {
  const needs: [string, string][] = [];
  for (const key in sel) {
    // The process's own labels can carry a connection key too; then it needs nothing.
    if (proc.has(key)) continue;
    const name = nameOf(key);
    if (!CONNECTION.has(name)) return undefined;
    const value = key.slice(name.length + 1);
    if (name === "direction" && value !== "input" && value !== "output") return undefined;
    if (name.endsWith(":port") && !/^\d{1,5}$/.test(value)) return undefined;
    needs.push([name, value]);
  }
  return needs;
}

/** Connection facts for a selector's needs on a connection with `fixed` facts, if consistent. */
function connectionFacts(
  needs: readonly [string, string][],
  fixed: ReadonlyMap<string, string>,
): Map<string, string> | undefined {
  const facts = new Map(fixed);
  for (const [name, value] of needs) {
    const had = facts.get(name);
    if (had !== undefined && had !== value) return undefined;
    facts.set(name, value);
  }
  return facts;
}

/** The labels the kernel would evaluate with: process labels plus one value per connection key. */
function evaluationLabels(proc: ReadonlySet<string>, facts: ReadonlyMap<string, string>) {
  const labels = new Set(proc);
  for (const name of CONNECTION_LABELS) {
    labels.add(`${name}=${facts.get(name) ?? unknown(name)}`);
  }
  return labels;
}

const INBOUND: ReadonlyMap<string, string> = new Map([["direction", "input"]]);
const PLACEHOLDER = /\[([^[\]]*)\]/g;

function usesConnection(template: string): boolean {
  for (const m of template.matchAll(PLACEHOLDER)) if (CONNECTION.has(m[1]!)) return true;
  return false;
}

function isSubset(sel: SelectorSet, labels: ReadonlySet<string>): boolean {
  for (const k in sel) if (!labels.has(k)) return false;
  return true;
}

/** Splits a service key (`ip` or `ip:port`, kernel format) into facts. */
function serviceFacts(key: string): Map<string, string> {
  const colons = key.split(":").length - 1;
  const withPort = colons === 1 || colons === 8;
  const at = key.lastIndexOf(":");
  const facts = new Map([["direction", "output"]]);
  facts.set("destination:ip", withPort ? key.slice(0, at) : key);
  if (withPort) facts.set("destination:port", key.slice(at + 1));
  return facts;
}

interface ServiceContext {
  facts: Map<string, string>;
  labels: Set<string>;
}

const serviceCache = new WeakMap<LoadSdInfo, ServiceContext[]>();

/** Service entries as outbound connections; cached per (immutable) service table. */
function serviceContexts(sd: LoadSdInfo): ServiceContext[] {
  let out = serviceCache.get(sd);
  if (!out) {
    out = Object.entries(sd).map(([key, v]) => ({
      facts: serviceFacts(key),
      labels: new Set(v.labels),
    }));
    serviceCache.set(sd, out);
  }
  return out;
}

/**
 * Lists the identities the loaded policies can assign to a process with these labels.
 *
 * @example
 * ```ts
 * import { assignableIdentities } from "./assignable.ts";
 * assignableIdentities({
 *   load_config: { trust_domain: "acme.test" },
 *   load_sd_info: {},
 *   load_policies: { policies: [{ position: 0, id: "p", selectors: [{ "process:name=curl": true,
 *     "direction=output": true }], certificate: { workloadID: "curl/[process:uid]" } }] },
 * }, ["process:name=curl", "process:uid=0"], "acme.test")[0]?.spiffeId;
 * // "spiffe://acme.test/curl/0"
 * ```
 */
export function assignableIdentities(
  payloads: KernelPayloads,
  processLabels: Iterable<string>,
  trustDomain: string,
): Assignable[] {
  const proc = new Set(processLabels);
  const services = serviceContexts(payloads.load_sd_info);
  const out = new Map<string, Assignable>();
  const add = (
    template: string,
    labels: Set<string>,
    remote: Set<string> | undefined,
    base: Omit<Assignable, "spiffeId" | "workloadID">,
  ) => {
    const sub = substituteWorkloadId(
      template,
      indexLabels(labels),
      remote ? indexLabels(remote) : undefined,
    );
    if (sub.unresolved.length > 0) return;
    const wildcards = new Set<string>();
    const workloadID = sub.workloadID.replace(UNKNOWN, (_, name: string) => {
      wildcards.add(name);
      return `[${name}]`;
    });
    const a: Assignable = {
      spiffeId: `spiffe://${trustDomain}/${workloadID}`,
      workloadID,
      ...base,
    };
    if (wildcards.size) a.wildcards = [...wildcards].sort();
    out.set(JSON.stringify([a.policyId, a.egressId, a.spiffeId, a.ttl, a.dnsNames]), a);
  };
  for (const policy of payloads.load_policies.policies) {
    let needsList: [string, string][][] | undefined;
    for (const sel of policy.selectors) {
      const needs = connectionNeeds(sel, proc);
      if (needs) (needsList ??= []).push(needs);
    }
    if (!needsList) continue;
    const pc = policy.certificate;
    const parent = {
      dnsNames: [...(pc.dnsNames ?? [])],
      policyId: policy.id,
      ...(pc.ttl !== undefined ? { ttl: pc.ttl } : {}),
    };
    // Without connection placeholders one connection per identity is enough.
    const parentPerConnection = usesConnection(pc.workloadID);
    const egresses = (policy.egress ?? []).map((egress) => {
      const ec = egress.certificate;
      const ttl = ec.ttl ?? pc.ttl;
      return {
        egress,
        perService: ec.workloadID.includes("["),
        base: {
          dnsNames: [...(ec.dnsNames ?? pc.dnsNames ?? [])],
          policyId: policy.id,
          egressId: egress.id,
          ...(ttl !== undefined ? { ttl } : {}),
        },
      };
    });
    for (const needs of needsList) {
      let parentDone = false;
      const inbound = connectionFacts(needs, INBOUND);
      if (inbound) {
        add(pc.workloadID, evaluationLabels(proc, inbound), undefined, parent);
        parentDone = !parentPerConnection;
      }
      const pending = new Set(egresses);
      if (parentDone && pending.size === 0) continue;
      for (const service of services) {
        const hits = [...pending].filter((e) =>
          e.egress.selectors.some((s) => isSubset(s, service.labels))
        );
        if (parentDone && hits.length === 0) continue;
        const facts = connectionFacts(needs, service.facts);
        if (!facts) continue;
        const labels = evaluationLabels(proc, facts);
        if (!parentDone) {
          add(pc.workloadID, labels, undefined, parent);
          parentDone = !parentPerConnection;
        }
        for (const e of hits) {
          add(e.egress.certificate.workloadID, labels, service.labels, e.base);
          if (!e.perService) pending.delete(e);
        }
        if (parentDone && pending.size === 0) break;
      }
    }
  }
  return [...out.values()];
}

/** What an entry with {@linkcode Assignable.wildcards} accepts (exact match when it has none). */
export function pattern(a: Assignable): RegExp {
  let re = a.spiffeId.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  for (const name of a.wildcards ?? []) {
    re = re.replaceAll(`\\[${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\]`, WILDCARD[name]!);
  }
  return new RegExp(`^${re}$`);
}

/** What {@linkcode findAssignable} and {@linkcode isAssignable} check. */
export interface AssignableQuery {
  processLabels: Iterable<string>;
  spiffeId: string;
  trustDomain: string;
}

/** The policies (and egress entries) that can give the process this SPIFFE ID. */
export function findAssignable(payloads: KernelPayloads, query: AssignableQuery): Assignable[] {
  return assignableIdentities(payloads, query.processLabels, query.trustDomain)
    .filter((a) => a.wildcards ? pattern(a).test(query.spiffeId) : a.spiffeId === query.spiffeId);
}

/**
 * True if some loaded policy can give the process this SPIFFE ID.
 *
 * @example
 * ```ts
 * import { isAssignable } from "./assignable.ts";
 * isAssignable({
 *   load_config: { trust_domain: "t" }, load_sd_info: {},
 *   load_policies: { policies: [{ position: 0, id: "p", selectors: [{}], certificate: { workloadID: "w" } }] },
 * }, { processLabels: [], spiffeId: "spiffe://t/w", trustDomain: "t" }); // true
 * ```
 */
export function isAssignable(payloads: KernelPayloads, query: AssignableQuery): boolean {
  return findAssignable(payloads, query).length > 0;
}
