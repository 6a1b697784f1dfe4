/**
 * Per-workload keys and certificates for the proxy data plane: without the kernel module the agent
 * itself terminates TLS, so it holds a private key and a certificate per SPIFFE ID. Modelled on
 * ztunnel's SecretManager: a cache whose entries are `Initializing | Available | Unavailable`,
 * one issuance at a time per identity, renewal once a fraction of the lifetime has passed, the
 * last good certificate served while renewals fail (retried with backoff), never an expired one.
 *
 * Keys are made here (WebCrypto) and a PKCS#10 CSR goes through the identity manager's guarded
 * path ({@linkcode IdentityManager.issueForWorkload}), exactly as a kernel `csr_sign` would.
 * Key material is never logged.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { TaskContext } from "../../driver/payloads.ts";
import type { CertificateBundle } from "../../driver/proxy/types.ts";
import { generateRsaKeyPair, type KeyPair, signingAlgorithm } from "../../plugins/sdk/keys.ts";
import { encodePem } from "../../plugins/sdk/pem.ts";
import { x509 } from "../../plugins/sdk/x509.ts";
import { type Clock, systemClock } from "../../plugins/types.ts";
import { logger } from "../log.ts";
import { type IdentityManager, IssuanceRefusedError } from "./manager.ts";
import { agentMetrics } from "./metrics.ts";
import type { MetricsRegistry } from "../../plugins/sdk/metrics.ts";

/** `rsa`: RSA-2048 (camblet-driver peers only offer ECDHE-RSA suites); `ecdsa`: P-256. */
export type WorkloadKeyType = "rsa" | "ecdsa";

/** Who needs the identity: the issuance hook and the audit log see `task`, policies `labels`. */
export interface WorkloadRequester {
  task: TaskContext;
  /** `name=value` labels the loaded policies must assign the SPIFFE ID to. */
  labels: readonly string[];
}

/** Options for {@linkcode WorkloadCertificates}. */
export interface WorkloadCertificatesOptions {
  /** The identity manager (only its workload path is used). */
  identity: Pick<IdentityManager, "issueForWorkload">;
  /** Default `rsa`. */
  keyType?: WorkloadKeyType;
  clock?: Clock;
  log?: Logger;
  metrics?: MetricsRegistry;
  /** Fraction of the lifetime after which a certificate is renewed (default 0.5, as ztunnel). */
  renewAt?: number;
  /** First retry delay after a failed renewal (default 5 s); doubles up to 5 min. */
  retryMs?: number;
}

/** One cached identity as status shows it: no key material. */
export interface WorkloadCertificateStats {
  spiffeId: string;
  serial: string;
  notAfter: string;
  renewAt: string;
  /** An issuance is in flight. */
  renewing: boolean;
  /** Consecutive failed renewals. */
  failures: number;
  lastError?: string;
}

/** The subject camblet-driver puts in its CSRs; the SPIFFE ID is the URI SAN. */
const WORKLOAD_SUBJECT = "CN=camblet-protected-workload";
const MAX_RETRY_MS = 300_000;
/** Refusals after the CA was asked: it may have certified the key, so the key is not reused. */
const AFTER_CA = new Set(["ca_rejected", "ca_error", "ca_timeout", "bad_ca_answer", "internal"]);
/** setTimeout's largest delay; longer ones fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Current {
  bundle: CertificateBundle;
  serial: string;
  notAfter: number;
  renewAt: number;
}

interface Entry {
  spiffeId: string;
  /** The last requester: renewals are asked for with its task and labels. */
  requester: WorkloadRequester;
  current?: Current;
  pending?: Promise<CertificateBundle>;
  /** The renewal due at `current.renewAt`, or the next retry after a failure. */
  timer?: { kind: "renew" | "retry"; id: ReturnType<typeof setTimeout> };
  failures: number;
  lastError?: Error;
}

/**
 * When to renew: `fraction` of the lifetime measured from when the agent received the certificate
 * (CAs backdate notBefore for clock skew, which would make renewal early).
 */
function renewalTime(receivedAt: number, notAfter: number, fraction: number): number {
  return receivedAt + Math.floor((notAfter - receivedAt) * fraction);
}

/** Exponential backoff after `failures` consecutive failures. */
function retryDelay(failures: number, retryMs: number): number {
  return Math.min(Math.max(MAX_RETRY_MS, retryMs), retryMs * 2 ** Math.min(failures - 1, 20));
}

async function generateKey(keyType: WorkloadKeyType): Promise<KeyPair> {
  if (keyType === "rsa") return await generateRsaKeyPair(2048);
  return await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
}

async function workloadCsr(keys: KeyPair, spiffeId: string): Promise<Uint8Array> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: WORKLOAD_SUBJECT,
    keys: keys as CryptoKeyPair,
    signingAlgorithm: signingAlgorithm(keys.privateKey),
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: spiffeId }])],
  });
  return new Uint8Array(csr.rawData);
}

/**
 * Keys and certificates per SPIFFE ID for the proxy; satisfies driver/proxy's `IdentitySource`.
 *
 * @example
 * ```ts ignore
 * const certs = new WorkloadCertificates({ identity: manager });
 * await certs.prepare("spiffe://acme.test/web", { task, labels: ["process:name=web"] });
 * const { certPem, keyPem, chainPem, bundlePem } = await certs.certificateFor("spiffe://acme.test/web");
 * await certs.dispose();
 * ```
 */
export class WorkloadCertificates {
  #identity: Pick<IdentityManager, "issueForWorkload">;
  #keyType: WorkloadKeyType;
  #clock: Clock;
  #log: Logger;
  #metrics: MetricsRegistry;
  #renewAt: number;
  #retryMs: number;
  #entries = new Map<string, Entry>();
  /**
   * A key whose issuance was refused before the CA saw it: never certified, so the next issuance
   * may use it (a refusal loop then costs no RSA key generation).
   */
  #spareKey: KeyPair | undefined;
  #stop = new AbortController();
  #inFlight = new Set<Promise<unknown>>();

  constructor(options: WorkloadCertificatesOptions) {
    const renewAt = options.renewAt ?? 0.5;
    if (!(renewAt > 0 && renewAt < 1)) {
      throw new RangeError(`Cannot use renewAt ${renewAt}: it must be between 0 and 1`);
    }
    const retryMs = options.retryMs ?? 5_000;
    if (!(retryMs > 0)) throw new RangeError(`Cannot use retryMs ${retryMs}: it must be positive`);
    this.#identity = options.identity;
    this.#keyType = options.keyType ?? "rsa";
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log ?? logger("identity", "workload");
    this.#metrics = options.metrics ?? agentMetrics;
    this.#renewAt = renewAt;
    this.#retryMs = retryMs;
  }

  /** Number of cached identities (issued or being issued). */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The certificate for `spiffeId`, issued for `requester` if none is cached or it expired.
   * Concurrent calls share one issuance. A cached certificate past its renewal time is returned at
   * once while one renewal runs in the background with this requester.
   *
   * @throws {IssuanceRefusedError} when the identity manager refuses (e.g. the SPIFFE ID is not
   * assignable to `requester.labels`); nothing is cached then.
   */
  prepare(spiffeId: string, requester: WorkloadRequester): Promise<CertificateBundle> {
    if (this.#stop.signal.aborted) {
      return Promise.reject(
        new Error(`Cannot prepare "${spiffeId}": workload certificates disposed`),
      );
    }
    let entry = this.#entries.get(spiffeId);
    if (!entry) {
      entry = { spiffeId, requester, failures: 0 };
      this.#entries.set(spiffeId, entry);
      this.#gauge();
    }
    entry.requester = requester;
    const served = this.#serve(entry);
    if (served) return Promise.resolve(served);
    // Expired (or never issued) and nothing in flight: the caller waits for a fresh one now.
    return this.#issue(entry);
  }

  /**
   * What driver/proxy's `IdentitySource` asks per connection: the cached certificate, or the
   * issuance in flight. Never issues by itself (a prepared identity renews on its own).
   *
   * @throws {Error} when `spiffeId` was never prepared, or its certificate expired and no renewal
   * is in flight (the message carries the last renewal error).
   */
  certificateFor(spiffeId: string): CertificateBundle | Promise<CertificateBundle> {
    const entry = this.#entries.get(spiffeId);
    if (!entry) {
      throw new Error(`Cannot get the certificate of "${spiffeId}": it was never prepared`);
    }
    const served = this.#serve(entry);
    if (served) return served;
    const expired = entry.current
      ? ` expired at ${new Date(entry.current.notAfter).toISOString()}`
      : " has none";
    const why = entry.lastError ? `; renewal failing: ${entry.lastError.message}` : "";
    throw new Error(`Cannot get the certificate of "${spiffeId}": it${expired}${why}`);
  }

  /** Drops `spiffeId` (its renewals stop; an issuance in flight is not stored). */
  forget(spiffeId: string): boolean {
    const entry = this.#entries.get(spiffeId);
    if (!entry) return false;
    this.#clearTimer(entry);
    this.#entries.delete(spiffeId);
    this.#gauge();
    return true;
  }

  /** What is cached, for status: serials and times, never keys. */
  stats(): WorkloadCertificateStats[] {
    const out: WorkloadCertificateStats[] = [];
    for (const e of this.#entries.values()) {
      if (!e.current) continue;
      const s: WorkloadCertificateStats = {
        spiffeId: e.spiffeId,
        serial: e.current.serial,
        notAfter: new Date(e.current.notAfter).toISOString(),
        renewAt: new Date(e.current.renewAt).toISOString(),
        renewing: e.pending !== undefined,
        failures: e.failures,
      };
      if (e.lastError) s.lastError = e.lastError.message;
      out.push(s);
    }
    return out;
  }

  /** Stops timers, aborts CA calls in flight and waits for them; forgets everything. */
  async dispose(): Promise<void> {
    this.#stop.abort(new Error("workload certificates disposed"));
    for (const e of this.#entries.values()) this.#clearTimer(e);
    this.#entries.clear();
    await Promise.allSettled([...this.#inFlight]);
    this.#spareKey = undefined;
  }

  /** The valid certificate (starting a due renewal), the issuance in flight, or nothing. */
  #serve(entry: Entry): CertificateBundle | Promise<CertificateBundle> | undefined {
    const now = this.#clock.now();
    const cur = entry.current;
    if (cur && now < cur.notAfter) {
      // During a retry backoff the timer, not the caller, starts the next attempt.
      if (now >= cur.renewAt && !entry.pending && entry.timer?.kind !== "retry") {
        this.#renewInBackground(entry);
      }
      return cur.bundle;
    }
    return entry.pending;
  }

  #renewInBackground(entry: Entry): void {
    this.#issue(entry).catch(() => {/* logged and retried in #issue */});
  }

  /** One issuance for `entry` (single-flight: callers share `entry.pending`). */
  #issue(entry: Entry): Promise<CertificateBundle> {
    if (entry.pending) return entry.pending;
    this.#clearTimer(entry);
    const run = async (): Promise<CertificateBundle> => {
      const requester = entry.requester;
      try {
        const fresh = await this.#issueOnce(entry.spiffeId, requester);
        if (this.#entries.get(entry.spiffeId) === entry) {
          const renewed = entry.current !== undefined;
          entry.current = fresh;
          entry.failures = 0;
          delete entry.lastError;
          this.#scheduleRenewal(entry);
          // The audit log already has each issuance; renewals are worth a line of their own.
          this.#log[renewed ? "info" : "debug"](
            renewed ? "Workload certificate renewed" : "Workload certificate issued",
            {
              spiffeId: entry.spiffeId,
              serial: fresh.serial,
              notAfter: new Date(fresh.notAfter).toISOString(),
              renewAt: new Date(fresh.renewAt).toISOString(),
            },
          );
          if (renewed) this.#countRenewal("ok");
        }
        return fresh.bundle;
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        this.#failed(entry, error);
        throw error;
      } finally {
        delete entry.pending;
      }
    };
    const p = run();
    entry.pending = p;
    this.#inFlight.add(p);
    p.then(() => this.#inFlight.delete(p), () => this.#inFlight.delete(p));
    return p;
  }

  /** A failure: nothing cached for a first issuance; otherwise keep the old one and retry. */
  #failed(entry: Entry, error: Error): void {
    if (this.#entries.get(entry.spiffeId) !== entry) return;
    if (!entry.current) {
      this.#entries.delete(entry.spiffeId);
      this.#gauge();
      this.#log.warn("Cannot issue workload certificate for {spiffeId}: {error}", {
        spiffeId: entry.spiffeId,
        error: error.message,
      });
      return;
    }
    entry.failures++;
    entry.lastError = error;
    this.#countRenewal("failed");
    const delay = retryDelay(entry.failures, this.#retryMs);
    const expired = this.#clock.now() >= entry.current.notAfter;
    this.#log.warn(
      expired
        ? "Cannot renew workload certificate for {spiffeId} (expired, not served): {error}"
        : "Cannot renew workload certificate for {spiffeId}; serving the old one: {error}",
      {
        spiffeId: entry.spiffeId,
        error: error.message,
        failures: entry.failures,
        retryInMs: delay,
        notAfter: new Date(entry.current.notAfter).toISOString(),
      },
    );
    this.#setTimer(entry, "retry", delay);
  }

  /** Key (fresh, or the spare of a refused issuance), CSR, guarded issuance, PEM bundle. */
  async #issueOnce(spiffeId: string, requester: WorkloadRequester) {
    const keys = this.#spareKey ?? await generateKey(this.#keyType);
    this.#spareKey = undefined;
    let issued;
    try {
      issued = await this.#identity.issueForWorkload({
        task: requester.task,
        labels: requester.labels,
        csrDer: await workloadCsr(keys, spiffeId),
        signal: this.#stop.signal,
      });
    } catch (e) {
      if (e instanceof IssuanceRefusedError && !AFTER_CA.has(e.reason)) this.#spareKey = keys;
      throw e;
    }
    const now = this.#clock.now();
    const notAfter = issued.notAfter.getTime();
    if (notAfter <= now) {
      throw new Error(
        `Cannot use certificate for "${spiffeId}": it expired at ${issued.notAfter.toISOString()}`,
      );
    }
    const pem = (ders: readonly Uint8Array[]) =>
      ders.map((der) => encodePem("CERTIFICATE", der)).join("");
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
    const bundle: CertificateBundle = Object.freeze({
      certPem: pem([issued.certificate]),
      keyPem: encodePem("PRIVATE KEY", pkcs8),
      chainPem: pem(issued.chain),
      bundlePem: pem(issued.trustAnchors),
    });
    return {
      bundle,
      serial: issued.serial,
      notAfter,
      renewAt: renewalTime(now, notAfter, this.#renewAt),
    } satisfies Current;
  }

  /** Renews on time even if nobody asks (an idle identity must not expire). */
  #scheduleRenewal(entry: Entry): void {
    this.#setTimer(entry, "renew", entry.current!.renewAt - this.#clock.now());
  }

  #setTimer(entry: Entry, kind: "renew" | "retry", delayMs: number): void {
    this.#clearTimer(entry);
    if (this.#stop.signal.aborted) return;
    const id = setTimeout(() => {
      delete entry.timer;
      if (this.#entries.get(entry.spiffeId) !== entry || entry.pending) return;
      this.#renewInBackground(entry);
    }, Math.min(MAX_TIMER_MS, Math.max(0, delayMs)));
    entry.timer = { kind, id };
  }

  #clearTimer(entry: Entry): void {
    if (entry.timer === undefined) return;
    clearTimeout(entry.timer.id);
    delete entry.timer;
  }

  #countRenewal(result: "ok" | "failed"): void {
    this.#metrics.counter(
      "camblet_workload_cert_renewals_total",
      "proxy workload certificate renewals by result",
    ).inc({ result });
  }

  #gauge(): void {
    this.#metrics.gauge("camblet_workload_certs", "proxy workload identities cached")
      .set(this.#entries.size);
  }
}
