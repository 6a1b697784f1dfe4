/**
 * The identity manager: guards every `csr_sign`. The CA plugin signs; this decides. It verifies
 * the CSR, checks the SPIFFE ID against what the loaded policies can assign to the requesting
 * process, caps the TTL, asks the CA within a time budget, builds the kernel's answer and audits
 * it. It never answers with an error (that crashes camblet-driver 0.8.0): every refusal is a
 * refusal certificate, counted and logged with its reason.
 *
 * The proxy data plane (no kernel module) asks through {@linkcode IdentityManager.issueForWorkload}:
 * the same checks and the same CA call, but the answer is DER and a refusal is a thrown
 * {@linkcode IssuanceRefusedError}.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { KernelPayloads, TaskContext } from "../../driver/payloads.ts";
import { CapabilityError, errorMessage } from "../errors.ts";
import { logger } from "../log.ts";
import type { findAssignable } from "../policy/assignable.ts";
import { findAssignableCached as defaultFindAssignable } from "./assignable_cache.ts";
import { type CsrDer, readCsr, verifyCsrFast } from "../../plugins/sdk/csr.ts";
import { OID_RSA_PSS, readCertificateFacts } from "../../plugins/sdk/leaf_der.ts";
import { taskLabels } from "../../driver/answers.ts";
import { type CertificateAuthority, CsrRejectedError } from "../../plugins/ca/types.ts";
import { type Clock, systemClock } from "../../plugins/types.ts";
import { AuditLog, type AuditRecord } from "./audit.ts";
import { decideIssuance, type RefusalReason } from "./decide.ts";
import { checkIssuancePolicy } from "./issuance_policy.ts";
import type { IssuanceHook } from "../opa/issuance_hook.ts";
import {
  kernelCsrAnswer,
  type KernelTrustAnchor,
  TrustAnchorCache,
} from "../../driver/kernel_answer.ts";
import { agentMetrics } from "./metrics.ts";
import type { MetricsRegistry } from "../../plugins/sdk/metrics.ts";
import { RefusalIssuer } from "./refusal.ts";

/** One kernel `csr_sign` request. */
export interface CsrSignRequest {
  /** The kernel's request id (for the audit log). */
  id?: string;
  task: TaskContext;
  /** The kernel's `data`: the string `{"csr":"<PEM>","ttl":"3600s"}` or that object parsed. */
  data: string | Record<string, unknown>;
}

/** Options for {@linkcode IdentityManager.create}. */
export interface IdentityManagerOptions {
  ca: CertificateAuthority;
  trustDomain: string;
  /** The compiled policies currently loaded in the kernel. */
  payloads: () => KernelPayloads;
  /** The requesting process's labels (`name=value`); must honour `signal`. */
  labelsFor: (task: TaskContext, signal: AbortSignal) => Promise<string[]>;
  /** `--default-cert-ttl` in ms: the cap for policies without a ttl. */
  defaultCertTtlMs: number;
  /** Time for labels + CA together before refusing (default 500 ms; the kernel waits 1 s). */
  budgetMs?: number;
  /** Time for the CA in {@linkcode IdentityManager.issueForWorkload} (default 5 s: no kernel waits). */
  workloadBudgetMs?: number;
  /** Lifetime of refusal certificates (default 60 s). */
  refusalValidityMs?: number;
  /** Driving camblet-driver: trust anchors must be RSA (default true). */
  kernelDriver?: boolean;
  clock?: Clock;
  audit?: AuditLog;
  metrics?: MetricsRegistry;
  log?: Logger;
  /** Which policy entries can give a process a SPIFFE ID (agent/policy/assignable.ts). */
  findAssignable?: typeof findAssignable;
  /** The OPA issuance policy in force, if any (asked per request: it changes with the sources). */
  issuanceHook?: () => IssuanceHook | undefined;
}

/** A CSR the agent made for a workload it terminates TLS for (proxy mode). */
export interface WorkloadIssueRequest {
  /** The process the certificate is for (audit record, issuance hook input). */
  task: TaskContext;
  /** Its labels (`name=value`), as the proxy resolved them: `labelsFor` is not called. */
  labels: readonly string[];
  /** PKCS#10, DER, with the SPIFFE ID as its one URI SAN. */
  csrDer: Uint8Array;
  /** Lifetime to ask for in the kernel's form (`"3600s"`); default: the policy's cap. */
  ttl?: string;
  /** Aborts the CA call (e.g. at shutdown). */
  signal?: AbortSignal;
}

/** A certificate the CA issued and the manager checked; DER, for the caller to encode. */
export interface IssuedCertificate {
  spiffeId: string;
  /** The leaf. */
  certificate: Uint8Array;
  /** Intermediates from the leaf's issuer up (may be empty). */
  chain: Uint8Array[];
  /** The roots peers trust now (never empty). */
  trustAnchors: Uint8Array[];
  notBefore: Date;
  notAfter: Date;
  /** Hex. */
  serial: string;
  policyId: string;
  egressId?: string;
}

/**
 * Issuance was refused: `reason` is the metric label, `message` the explanation naming the value
 * (`Cannot sign CSR: no loaded policy assigns "spiffe://acme.test/x" to the requesting process`).
 */
export class IssuanceRefusedError extends Error {
  override name = "IssuanceRefusedError";
  constructor(
    readonly reason: RefusalReason,
    detail: string,
    readonly spiffeId?: string,
    readonly policyReasons?: string[],
    options?: ErrorOptions,
  ) {
    super(detail, options);
  }
}

/** Which path asked: the kernel's `csr_sign` or the proxy data plane. */
type Via = "kernel" | "proxy";

/** Who asked, for the audit record. */
interface Asker {
  id?: string;
  task: TaskContext;
  via: Via;
}

function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener("abort", onAbort), resolve(v)),
      (e) => (signal.removeEventListener("abort", onAbort), reject(e)),
    );
  });
}

const BUDGET = Symbol("budget");

/**
 * The labels the kernel's task context proves by itself are always among a process's labels, even
 * when the attestor that also reports them is late (else a valid identity is "not assignable").
 */
function withTaskLabels(labels: readonly string[], task: TaskContext): string[] {
  const names = new Set(labels.map((l) => l.slice(0, l.indexOf("="))));
  const out = [...labels];
  for (const l of taskLabels(task)) if (!names.has(l.slice(0, l.indexOf("=")))) out.push(l);
  return out;
}

type Resolved =
  & Required<
    Pick<IdentityManagerOptions, "budgetMs" | "workloadBudgetMs" | "clock" | "findAssignable">
  >
  & IdentityManagerOptions;

/** A request read once: the CSR's parts in DER (plugins/sdk/leaf_der.ts). */
interface ParsedRequest {
  csr: CsrDer;
  names: { uris: string[]; dnsNames: string[]; others: string[] };
  ttl: string | undefined;
}

function namesOf(csr: CsrDer): ParsedRequest["names"] {
  return { uris: csr.uris, dnsNames: csr.dnsNames, others: csr.others };
}

/** Guards issuance for the kernel. Create with {@linkcode IdentityManager.create}. */
export class IdentityManager {
  readonly audit: AuditLog;
  #o: Resolved;
  #refusal: RefusalIssuer;
  #anchors = new TrustAnchorCache();
  #lastAnchors: KernelTrustAnchor[];
  #lastKernelKey: Uint8Array | undefined;
  #fallback: string;
  #log: Logger;
  #metrics: MetricsRegistry;

  private constructor(
    o: Resolved,
    refusal: RefusalIssuer,
    anchors: KernelTrustAnchor[],
    fallback: string,
  ) {
    this.#o = o;
    this.#refusal = refusal;
    this.#lastAnchors = anchors;
    this.#fallback = fallback;
    this.audit = o.audit ?? new AuditLog();
    this.#log = o.log ?? logger("identity");
    this.#metrics = o.metrics ?? agentMetrics;
  }

  /**
   * Checks the CA's trust anchors (RSA only with the kernel driver: else {@linkcode CapabilityError})
   * and generates the refusal issuer once, so that refusing later is fast.
   */
  static async create(options: IdentityManagerOptions): Promise<IdentityManager> {
    const o = {
      budgetMs: 500,
      workloadBudgetMs: 5_000,
      clock: systemClock,
      findAssignable: defaultFindAssignable,
      ...options,
    };
    const roots = await options.ca.trustBundle();
    const cache = new TrustAnchorCache();
    const anchors: KernelTrustAnchor[] = [];
    for (const der of roots) {
      try {
        anchors.push(cache.get(der));
      } catch (e) {
        if (options.kernelDriver === false) continue;
        throw new CapabilityError(`Cannot use CA "${options.ca.name}": ${(e as Error).message}`);
      }
    }
    // The daemon's manager shares the process's refusal issuer with the kernel worker.
    const refusal = options.clock === undefined && options.refusalValidityMs === undefined
      ? await RefusalIssuer.shared()
      : await RefusalIssuer.create({
        clock: o.clock,
        ...(options.refusalValidityMs !== undefined
          ? { validityMs: options.refusalValidityMs }
          : {}),
      });
    const fallbackAnchors = anchors.length > 0 ? anchors : [cache.get(refusal.placeholderAnchor)];
    const fallback = kernelCsrAnswer(await refusal.issue(undefined), [], fallbackAnchors);
    return new IdentityManager(o, refusal, anchors, fallback);
  }

  /**
   * Answers one `csr_sign` with the exact answer string for the kernel. Never rejects and never
   * returns an error answer: a refused request gets a refusal certificate.
   */
  async signForKernel(request: CsrSignRequest): Promise<string> {
    const started = performance.now();
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(BUDGET), this.#o.budgetMs);
    const asker: Asker = { task: request.task, via: "kernel" };
    if (request.id !== undefined) asker.id = request.id;
    let publicKey: Uint8Array | undefined;
    let spiffeId: string | undefined;
    try {
      const parsed = this.#parse(request);
      publicKey = parsed.csr.spki;
      spiffeId = parsed.names.uris[0];
      if (!(await verifyCsrFast(parsed.csr))) {
        throw new IssuanceRefusedError(
          "csr_signature",
          "Cannot sign CSR: its signature does not verify",
        );
      }
      this.#lastKernelKey = publicKey;
      const labels = await this.#labels(request.task, ctl.signal);
      const issued = await this.#issue(parsed, labels, request.task, ctl.signal, this.#o.budgetMs);
      let anchors: KernelTrustAnchor[];
      try {
        anchors = issued.trustAnchors.map((der) => this.#anchors.get(der));
      } catch (e) {
        throw new IssuanceRefusedError(
          "bad_ca_answer",
          `Cannot use CA answer: ${(e as Error).message}`,
          issued.spiffeId,
        );
      }
      this.#lastAnchors = anchors;
      const answer = kernelCsrAnswer(issued.certificate, issued.chain, anchors);
      this.#recordIssued(asker, issued, started);
      return answer;
    } catch (e) {
      const r = this.#asRefusal(e);
      return await this.#refuse(asker, r, publicKey, spiffeId ?? r.spiffeId, started);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Issues a certificate for a workload the agent terminates TLS for (proxy mode), through the
   * same checks as {@linkcode IdentityManager.signForKernel}: the CSR's signature, the SPIFFE ID in
   * the trust domain and assignable to `labels` by the loaded policies, the issuance hook, the TTL
   * caps, and the CA's answer. The CA gets `workloadBudgetMs`. Audited and counted with
   * `via: "proxy"`.
   *
   * @throws {IssuanceRefusedError} with the refusal reason; no refusal certificate is made.
   *
   * @example
   * ```ts ignore
   * const issued = await manager.issueForWorkload({ task, labels: ["process:name=web"], csrDer });
   * issued.spiffeId; // "spiffe://acme.test/web"
   * ```
   */
  async issueForWorkload(request: WorkloadIssueRequest): Promise<IssuedCertificate> {
    const started = performance.now();
    const budgetMs = this.#o.workloadBudgetMs;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(BUDGET), budgetMs);
    const signal = request.signal ? AbortSignal.any([ctl.signal, request.signal]) : ctl.signal;
    const asker: Asker = { task: request.task, via: "proxy" };
    let spiffeId: string | undefined;
    try {
      let csr: CsrDer;
      try {
        csr = readCsr(request.csrDer);
      } catch (e) {
        throw new IssuanceRefusedError("bad_csr", (e as Error).message);
      }
      const parsed: ParsedRequest = { csr, names: namesOf(csr), ttl: request.ttl };
      spiffeId = parsed.names.uris[0];
      if (!(await verifyCsrFast(csr))) {
        throw new IssuanceRefusedError(
          "csr_signature",
          "Cannot sign CSR: its signature does not verify",
          spiffeId,
        );
      }
      const issued = await this.#issue(parsed, request.labels, request.task, signal, budgetMs);
      this.#recordIssued(asker, issued, started);
      return issued;
    } catch (e) {
      const r = this.#asRefusal(e);
      const record: AuditRecord = {
        ...this.#base(asker, started),
        outcome: "refused",
        reason: r.reason,
        detail: r.message,
      };
      const id = spiffeId ?? r.spiffeId;
      if (id !== undefined) record.spiffeId = id;
      if (r.policyReasons) record.policyReasons = r.policyReasons;
      this.audit.record(record);
      this.#count("refused", r.reason, started, "proxy");
      throw r;
    } finally {
      clearTimeout(timer);
    }
  }

  #parse(request: CsrSignRequest): ParsedRequest {
    let data: unknown = request.data;
    if (typeof data === "string") {
      try {
        data = JSON.parse(data);
      } catch (e) {
        throw new IssuanceRefusedError(
          "bad_request",
          `Cannot read csr_sign data: ${(e as Error).message}`,
        );
      }
    }
    const d = data as Record<string, unknown> | null;
    if (typeof d !== "object" || d === null || typeof d["csr"] !== "string") {
      throw new IssuanceRefusedError("bad_request", 'Cannot read csr_sign data: no "csr" string');
    }
    if (d["ttl"] !== undefined && typeof d["ttl"] !== "string") {
      throw new IssuanceRefusedError(
        "bad_ttl",
        `Cannot sign CSR: ttl ${JSON.stringify(d["ttl"])} is not a string`,
      );
    }
    let csr;
    try {
      csr = readCsr(d["csr"]);
    } catch (e) {
      throw new IssuanceRefusedError("bad_csr", (e as Error).message);
    }
    return { csr, names: namesOf(csr), ttl: d["ttl"] as string | undefined };
  }

  async #labels(task: TaskContext, signal: AbortSignal): Promise<string[]> {
    // Attestation is told to stop at 60 % of the budget (it then answers with the labels it has),
    // so that a late attestor leaves the CA its share instead of refusing the request.
    const soon = new AbortController();
    const timer = setTimeout(() => soon.abort(BUDGET), this.#o.budgetMs * 0.6);
    const stop = () => soon.abort(signal.reason);
    signal.addEventListener("abort", stop, { once: true });
    try {
      return withTaskLabels(await untilAborted(this.#o.labelsFor(task, soon.signal), signal), task);
    } catch (e) {
      throw new IssuanceRefusedError(
        "labels_unavailable",
        `Cannot sign CSR: labels of pid ${task.pid} unavailable: ${
          e === BUDGET ? `not within ${this.#o.budgetMs} ms` : (e as Error).message
        }`,
      );
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", stop);
    }
  }

  /**
   * The guarded path both askers share: decide, ask the issuance hook, have the CA sign within
   * `budgetMs` (for the message; `signal` enforces it), check its answer. Throws refusals.
   */
  async #issue(
    parsed: ParsedRequest,
    labels: readonly string[],
    task: TaskContext,
    signal: AbortSignal,
    budgetMs: number,
  ): Promise<IssuedCertificate> {
    const o = this.#o;
    const payloads = o.payloads();
    const decision = decideIssuance({
      names: parsed.names,
      ...(parsed.ttl !== undefined ? { requestedTtl: parsed.ttl } : {}),
      trustDomain: o.trustDomain,
      candidates: (id) =>
        o.findAssignable(payloads, {
          processLabels: labels,
          spiffeId: id,
          trustDomain: o.trustDomain,
        }),
      defaultTtlMs: o.defaultCertTtlMs,
      caMaxTtlMs: o.ca.maxTtlMs,
    });
    if (!decision.ok) {
      throw new IssuanceRefusedError(decision.reason, decision.detail, decision.spiffeId);
    }
    const hook = o.issuanceHook?.();
    if (hook) {
      const verdict = checkIssuancePolicy(hook, {
        decision,
        task,
        labels,
        payloads,
        trustDomain: o.trustDomain,
      });
      if (!verdict.allow) {
        throw new IssuanceRefusedError(
          "policy_denied",
          `Cannot sign CSR: issuance policy ${hook.entrypoint} denies "${decision.spiffeId}": ${
            verdict.reasons.join("; ")
          }`,
          decision.spiffeId,
          verdict.reasons,
        );
      }
    }
    let signed;
    try {
      signed = await untilAborted(
        o.ca.sign({
          // The same bytes object: a CA on the fast path does not read it again.
          csr: parsed.csr.der,
          spiffeId: decision.spiffeId,
          dnsNames: decision.dnsNames,
          ttlMs: decision.ttlMs,
        }, signal),
        signal,
      );
    } catch (e) {
      if (e === BUDGET) {
        throw new IssuanceRefusedError(
          "ca_timeout",
          `Cannot sign CSR: CA "${o.ca.name}" did not answer within ${budgetMs} ms`,
          decision.spiffeId,
        );
      }
      const why = errorMessage(e);
      throw new IssuanceRefusedError(
        e instanceof CsrRejectedError ? "ca_rejected" : "ca_error",
        why,
        decision.spiffeId,
        undefined,
        { cause: e },
      );
    }
    const leaf = this.#checkLeaf(signed.certificate, parsed.csr, decision.spiffeId, decision.ttlMs);
    if (signed.trustAnchors.length === 0) {
      throw new IssuanceRefusedError(
        "bad_ca_answer",
        "Cannot use CA answer: no trust anchors",
        decision.spiffeId,
      );
    }
    if (decision.clamped) {
      this.#log.debug("TTL clamped to the CA maximum", {
        spiffeId: decision.spiffeId,
        maxTtlMs: o.ca.maxTtlMs,
      });
    }
    const issued: IssuedCertificate = {
      spiffeId: decision.spiffeId,
      certificate: signed.certificate,
      chain: signed.chain,
      trustAnchors: signed.trustAnchors,
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
      serial: leaf.serialHex,
      policyId: decision.policyId,
    };
    if (decision.egressId !== undefined) issued.egressId = decision.egressId;
    return issued;
  }

  #recordIssued(asker: Asker, issued: IssuedCertificate, started: number): void {
    const record: AuditRecord = {
      ...this.#base(asker, started),
      outcome: "issued",
      spiffeId: issued.spiffeId,
      serial: issued.serial,
      notAfter: issued.notAfter.toISOString(),
      policyId: issued.policyId,
    };
    if (issued.egressId !== undefined) record.egressId = issued.egressId;
    this.audit.record(record);
    this.#count("issued", undefined, started, asker.via);
  }

  /** The CA must have issued what was decided: the CSR's key, the one SPIFFE ID, no PSS, no longer TTL. */
  #checkLeaf(der: Uint8Array, csr: CsrDer, spiffeId: string, ttlMs: number) {
    const bad = (why: string) =>
      new IssuanceRefusedError(
        "bad_ca_answer",
        `Cannot use certificate from CA "${this.#o.ca.name}": ${why}`,
        spiffeId,
      );
    let leaf;
    try {
      leaf = readCertificateFacts(der);
    } catch (e) {
      throw bad(`not a DER certificate (${(e as Error).message})`);
    }
    if (leaf.signatureAlgorithm === OID_RSA_PSS) {
      throw bad("signed with RSA-PSS, which the kernel cannot verify");
    }
    const sameKey = leaf.spki.length === csr.spki.length &&
      leaf.spki.every((b, i) => b === csr.spki[i]);
    if (!sameKey) throw bad("its public key is not the CSR's");
    if (leaf.uris.length !== 1 || leaf.uris[0] !== spiffeId) {
      throw bad(`its URI SANs are ${JSON.stringify(leaf.uris)}`);
    }
    // One minute of slack for the CA's own clock.
    if (leaf.notAfter.getTime() > this.#o.clock.now() + ttlMs + 60_000) {
      throw bad(`notAfter ${leaf.notAfter.toISOString()} exceeds the TTL of ${ttlMs / 1000}s`);
    }
    return leaf;
  }

  #asRefusal(e: unknown): IssuanceRefusedError {
    if (e instanceof IssuanceRefusedError) return e;
    return new IssuanceRefusedError(
      "internal",
      `Cannot sign CSR: ${errorMessage(e)}`,
    );
  }

  async #refuse(
    asker: Asker,
    r: IssuanceRefusedError,
    csrKey: Uint8Array | undefined,
    spiffeId: string | undefined,
    started: number,
  ): Promise<string> {
    try {
      // A CSR we cannot read still gets a certificate for the kernel's (shared) key when known.
      const key = csrKey ?? this.#lastKernelKey;
      // Prepared per key and reused while fresh: refusing costs nothing under a burst.
      const cert = await this.#refusal.refusal(key);
      const anchors = this.#lastAnchors.length > 0
        ? this.#lastAnchors
        : [this.#anchors.get(this.#refusal.placeholderAnchor)];
      const answer = kernelCsrAnswer(cert.der, [], anchors);
      const record: AuditRecord = {
        ...this.#base(asker, started),
        outcome: "refused",
        reason: r.reason,
        detail: r.message,
        serial: cert.serial,
        notAfter: cert.notAfter.toISOString(),
      };
      if (spiffeId !== undefined) record.spiffeId = spiffeId;
      if (r.policyReasons) record.policyReasons = r.policyReasons;
      this.audit.record(record);
      this.#count("refused", r.reason, started);
      return answer;
    } catch (e) {
      this.#log.error("Cannot build a refusal certificate; sending the prepared one", { error: e });
      this.#count("refused", "internal", started);
      return this.#fallback;
    }
  }

  #base(asker: Asker, started: number) {
    const t = asker.task;
    const base: Omit<AuditRecord, "outcome"> = {
      time: new Date(this.#o.clock.now()).toISOString(),
      task: {
        pid: t?.pid,
        uid: t?.uid,
        gid: t?.gid,
        command_path: t?.command_path,
        command_name: t?.command_name,
        cgroup_path: t?.cgroup_path,
      },
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      via: asker.via,
    };
    if (asker.id !== undefined) base.requestId = asker.id;
    return base;
  }

  /** Kernel series keep their labels; proxy issuances add `via="proxy"` to tell them apart. */
  #count(
    result: "issued" | "refused",
    reason: RefusalReason | undefined,
    started: number,
    via: Via = "kernel",
  ) {
    const labels: Record<string, string> = reason ? { result, reason } : { result };
    if (via === "proxy") labels["via"] = via;
    this.#metrics.counter(
      "camblet_csr_sign_total",
      "csr_sign requests (and proxy issuances, via=proxy) by result and refusal reason",
    ).inc(labels);
    this.#metrics.histogram(
      "camblet_csr_sign_duration_seconds",
      "time to answer csr_sign (or a proxy issuance, via=proxy)",
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    ).observe(
      (performance.now() - started) / 1000,
      via === "proxy" ? { result, via } : { result },
    );
  }
}
