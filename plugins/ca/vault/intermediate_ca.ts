/**
 * The `vault` CA in `intermediate` mode (the default): the agent generates its own RSA key, has
 * Vault sign an intermediate CA for it, and signs leaves in process, so Vault is never on the
 * kernel's 1-second path. The intermediate is renewed at half its life and at once when Vault's
 * issuer changes (root rotation); while Vault is down, signing continues until the intermediate
 * expires (logs and metrics say how long is left).
 *
 * @module
 */
import { hostname } from "node:os";
import type { CertificateAuthority, SignedCertificate, SignRequest } from "../types.ts";
import type { HealthResult } from "../../types.ts";
import { createCsr } from "../../sdk/csr.ts";
import { generateRsaKeyPair } from "../../sdk/keys.ts";
import { signLeafLocally } from "../../sdk/leaf_signer.ts";
import { planCaRenewal } from "../../sdk/renewal.ts";
import { certOf, derOf, requireRsa, sameDer, splitChain } from "../../sdk/ca_chain.ts";
import { formatDuration } from "../../sdk/duration.ts";
import type { CaCredentials } from "../../sdk/x509.ts";
import type { VaultConfig } from "./config.ts";
import { signIntermediate, signIntermediatePath } from "./pki.ts";
import { RSA_FIX, type SessionDeps, VaultSession } from "./vault_session.ts";

/** The intermediate in use. */
interface Current {
  credentials: CaCredentials;
  /** Sent with every leaf: the intermediate and Vault's intermediates (no roots). */
  chain: Uint8Array[];
  roots: Uint8Array[];
  /** The Vault issuer that signed it. */
  issuer: Uint8Array;
  notBefore: number;
  notAfter: number;
}

/** Status for tests and the agent's status page. */
export interface IntermediateStatus {
  notAfter: string;
  timeLeftMs: number;
  renewals: number;
  failures: number;
  lastError?: string;
}

/** Options for {@linkcode VaultIntermediateCa.open}. */
export interface VaultCaOptions extends SessionDeps {
  /** Aborted when the agent stops. */
  signal?: AbortSignal;
  /** Run {@linkcode VaultIntermediateCa.maintain} on a timer (default true; tests drive it). */
  timer?: boolean;
}

/** The intermediate-mode CA. */
export class VaultIntermediateCa implements CertificateAuthority {
  readonly name = "vault";
  readonly maxTtlMs: number;
  readonly session: VaultSession;
  #config: VaultConfig;
  #current: Current;
  #failures = 0;
  #lastFailureAt: number | undefined;
  #renewals = 0;
  #lastIssuedNotAfter = 0;
  #ac = new AbortController();
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | undefined;

  private constructor(config: VaultConfig, session: VaultSession, current: Current) {
    this.#config = config;
    this.session = session;
    this.#current = current;
    this.maxTtlMs = config.maxTtlMs;
  }

  /** Connects to Vault and gets the first intermediate; throws when that fails. */
  static async open(config: VaultConfig, options: VaultCaOptions): Promise<VaultIntermediateCa> {
    const signal = options.signal ?? new AbortController().signal;
    const session = await VaultSession.open(config, options, signal);
    let ca: VaultIntermediateCa;
    try {
      const first = await requestCurrent(config, session, signal);
      ca = new VaultIntermediateCa(config, session, first);
    } catch (e) {
      session.close();
      throw e;
    }
    ca.#adopted("Got an intermediate CA from Vault");
    signal.addEventListener("abort", () => ca.#ac.abort(), { once: true });
    if (options.timer !== false) {
      ca.#timer = setInterval(() => void ca.maintain(), config.checkIntervalMs);
      Deno.unrefTimer(ca.#timer as unknown as number);
    }
    return ca;
  }

  #adopted(message: string): void {
    const c = this.#current;
    const now = this.session.deps.clock.now();
    this.session.anchors.set("intermediate", c.roots);
    this.session.health.signer(c.notAfter, now);
    this.session.deps.log.info(message, {
      subject: c.credentials.certificate.subject,
      serial: c.credentials.certificate.serialNumber,
      notAfter: new Date(c.notAfter).toISOString(),
      renewIn: formatDuration(Math.max(0, (c.notBefore + c.notAfter) / 2 - now)),
    });
    this.session.reportDrops();
  }

  /** Signs a leaf in process with the current intermediate: no call to Vault. */
  sign(request: SignRequest, signal: AbortSignal): Promise<SignedCertificate> {
    signal.throwIfAborted();
    const c = this.#current;
    const now = this.session.deps.clock.now();
    return signLeafLocally(c.credentials, request, {
      now,
      maxTtlMs: this.maxTtlMs,
      backdateMs: this.#config.backdateMs,
    }).then((leaf) => {
      if (this.#current === c) {
        this.#lastIssuedNotAfter = Math.max(this.#lastIssuedNotAfter, leaf.notAfter.getTime());
      }
      return {
        certificate: derOf(leaf),
        chain: c.chain,
        trustAnchors: this.session.anchors.current(now).anchors,
      };
    }, (e) => {
      if (now >= c.notAfter) {
        const why = this.session.health.status().lastError ?? "no renewal yet";
        throw new Error(
          `Cannot sign CSR: the Vault intermediate expired at ${
            new Date(c.notAfter).toISOString()
          } and could not be renewed (${why})`,
          { cause: e },
        );
      }
      throw e;
    });
  }

  /** Current trust anchors (Vault's roots, and retired ones still needed). */
  trustBundle(): Promise<Uint8Array[]> {
    return Promise.resolve(this.session.anchors.current(this.session.deps.clock.now()).anchors);
  }

  /** Token upkeep, issuer poll, intermediate renewal when due. Never throws; one run at a time. */
  maintain(): Promise<void> {
    this.#running ??= this.#maintain().finally(() => this.#running = undefined);
    return this.#running;
  }

  async #maintain(): Promise<void> {
    const signal = this.#ac.signal;
    if (signal.aborted) return;
    const session = this.session;
    await session.maintain(signal);
    const c = this.#current;
    const now = session.deps.clock.now();
    session.health.tick(now);
    const upstreamChanged = session.issuer !== undefined &&
      !sameDer(session.issuer.certificate, c.issuer);
    const plan = planCaRenewal({
      now,
      notBefore: c.notBefore,
      notAfter: c.notAfter,
      upstreamChanged,
      failures: this.#failures,
      ...(this.#lastFailureAt !== undefined ? { lastFailureAt: this.#lastFailureAt } : {}),
    });
    if (!plan.renew || signal.aborted) return;
    try {
      const next = await requestCurrent(this.#config, session, signal);
      if (!sameDer(next.roots[0], c.roots[0]) || upstreamChanged) {
        // Leaves of the old intermediate stay valid until they expire: keep their roots trusted.
        session.anchors.retire(c.roots, Math.max(this.#lastIssuedNotAfter, now));
      }
      this.#current = next;
      this.#lastIssuedNotAfter = 0;
      this.#failures = 0;
      this.#lastFailureAt = undefined;
      this.#renewals++;
      session.health.success();
      session.health.renewal("ok");
      this.#adopted(`Renewed the intermediate CA (${plan.reason})`);
    } catch (e) {
      if (signal.aborted) return;
      this.#failures++;
      this.#lastFailureAt = session.deps.clock.now();
      session.health.renewal("error");
      session.failed("renew the intermediate CA from Vault", e);
    }
  }

  /** Up while Vault answered the last call (issuer poll, intermediate renewal); else its error. */
  health(): HealthResult {
    return this.session.health.result();
  }

  /** The intermediate's state. */
  status(): IntermediateStatus {
    const c = this.#current;
    const h = this.session.health.status();
    const s: IntermediateStatus = {
      notAfter: new Date(c.notAfter).toISOString(),
      timeLeftMs: Math.max(0, c.notAfter - this.session.deps.clock.now()),
      renewals: this.#renewals,
      failures: this.#failures,
    };
    if (h.lastError !== undefined) s.lastError = h.lastError;
    return s;
  }

  /** The intermediate certificate in use (DER). */
  intermediate(): Uint8Array {
    return derOf(this.#current.credentials.certificate);
  }

  /** Stops the timer, aborts requests in flight and closes connections. */
  async dispose(): Promise<void> {
    clearInterval(this.#timer);
    this.#ac.abort();
    await this.#running;
    this.session.close();
  }
}

/** Generates a key, has Vault sign it as an intermediate, checks and returns it. */
async function requestCurrent(
  config: VaultConfig,
  session: VaultSession,
  signal: AbortSignal,
): Promise<Current> {
  const keys = await generateRsaKeyPair(config.intermediate.keySize);
  const commonName = config.intermediate.commonName ?? `Camblet agent CA ${hostname()}`;
  const csr = await createCsr(keys, `CN=${commonName.replace(/([,+"\\<>;=])/g, "\\$1")}`);
  const signed = await signIntermediate(session.client, {
    mount: config.mount,
    issuer: config.issuer,
    csr,
    commonName,
    ttlMs: config.intermediate.ttlMs,
  }, { signal, timeoutMs: config.requestTimeoutMs });
  const certificate = certOf(signed.certificate);
  const where = signIntermediatePath(config.mount, config.issuer);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  if (!sameDer(new Uint8Array(certificate.publicKey.rawData), spki)) {
    throw new Error(`Cannot use the intermediate from ${where}: it does not carry the agent's key`);
  }
  if (config.kernelDriver) requireRsa(signed.issuerChain, `the Vault chain of ${where}`, RSA_FIX);
  const split = await splitChain(signed.issuerChain);
  const issuer = signed.issuerChain[0] ?? split.roots[0]!;
  return {
    credentials: { certificate, keys },
    chain: [signed.certificate, ...split.intermediates],
    roots: split.roots,
    issuer,
    notBefore: certificate.notBefore.getTime(),
    notAfter: certificate.notAfter.getTime(),
  };
}
