/**
 * The `vault` CA in `leaf` mode: every CSR goes to `<mount>/sign/<role>`, for organisations that
 * require Vault to sign each workload certificate. Vault is then on the kernel's path, so each
 * call has a budget well under the kernel's 1 s (`leaf.timeout`, default 400 ms) and fails with a
 * clear error when it runs out; the identity manager turns that into a refusal certificate.
 *
 * @module
 */
import {
  type CertificateAuthority,
  CsrRejectedError,
  type SignedCertificate,
  type SignRequest,
} from "../types.ts";
import { parseCsr, verifyCsr } from "../../sdk/csr.ts";
import { requireRsa, sameDer, splitChain } from "../../sdk/ca_chain.ts";
import type { VaultConfig } from "./config.ts";
import { signLeaf } from "./pki.ts";
import type { VaultCaOptions } from "./intermediate_ca.ts";
import type { HealthResult } from "../../types.ts";
import { RSA_FIX, VaultSession } from "./vault_session.ts";
import { VaultHttpError, VaultUnreachableError } from "./vault_client.ts";

/** The leaf-mode CA. */
export class VaultLeafCa implements CertificateAuthority {
  readonly name = "vault";
  readonly maxTtlMs: number;
  readonly session: VaultSession;
  #config: VaultConfig;
  #role: string;
  #ac = new AbortController();
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | undefined;
  #lastChain: Uint8Array[] = [];
  #lastSplit: { intermediates: Uint8Array[]; roots: Uint8Array[] } | undefined;

  private constructor(config: VaultConfig, session: VaultSession) {
    this.#config = config;
    this.#role = config.leaf.role!;
    this.session = session;
    this.maxTtlMs = config.maxTtlMs;
  }

  /** Connects to Vault and reads the issuer chain; throws when that fails. */
  static async open(config: VaultConfig, options: VaultCaOptions): Promise<VaultLeafCa> {
    const signal = options.signal ?? new AbortController().signal;
    const session = await VaultSession.open(config, options, signal);
    const ca = new VaultLeafCa(config, session);
    signal.addEventListener("abort", () => ca.#ac.abort(), { once: true });
    if (options.timer !== false) {
      ca.#timer = setInterval(() => void ca.maintain(), config.checkIntervalMs);
      Deno.unrefTimer(ca.#timer as unknown as number);
    }
    return ca;
  }

  /** Asks Vault to sign; at most `leaf.timeout` (and never past `signal`). */
  async sign(request: SignRequest, signal: AbortSignal): Promise<SignedCertificate> {
    signal.throwIfAborted();
    let csr;
    try {
      csr = parseCsr(request.csr);
    } catch (e) {
      throw new CsrRejectedError((e as Error).message);
    }
    if (!(await verifyCsr(csr))) {
      throw new CsrRejectedError("Cannot sign CSR: its signature does not verify");
    }
    const ttlMs = Math.min(request.ttlMs, this.maxTtlMs);
    if (!(ttlMs > 0)) {
      throw new RangeError(`Cannot sign CSR: TTL ${request.ttlMs} ms is not positive`);
    }
    const s = this.session;
    const path = `${this.#config.mount}/sign/${this.#role}`;
    let signed;
    try {
      signed = await signLeaf(s.client, {
        mount: this.#config.mount,
        role: this.#role,
        csr: request.csr,
        spiffeId: request.spiffeId,
        dnsNames: request.dnsNames,
        ttlMs,
      }, { signal, timeoutMs: this.#config.leaf.timeoutMs });
    } catch (e) {
      if (signal.aborted) throw e;
      s.failed(`sign a leaf with ${path}`, e);
      // A refused token: log in again in the background, never on this request's time.
      if (e instanceof VaultHttpError && e.status === 403) void this.maintain();
      if (e instanceof VaultUnreachableError) {
        throw new Error(`Cannot sign CSR with Vault (${path}): ${e.message}`, { cause: e });
      }
      throw e;
    }
    s.health.success();
    if (this.#config.kernelDriver) {
      requireRsa(signed.issuerChain, `the Vault chain of ${path}`, RSA_FIX);
    }
    const split = await this.#split(signed.issuerChain);
    const now = s.deps.clock.now();
    return {
      certificate: signed.certificate,
      chain: split.intermediates,
      trustAnchors: s.anchors.current(now).anchors,
    };
  }

  /** Splits Vault's issuer chain, reusing the last result while the chain is the same. */
  async #split(chain: Uint8Array[]) {
    const same = this.#lastSplit && chain.length === this.#lastChain.length &&
      chain.every((d, i) => sameDer(d, this.#lastChain[i]));
    if (!same) {
      this.#lastSplit = await splitChain(chain);
      this.#lastChain = chain;
      this.session.anchors.set("leaf", this.#lastSplit.roots);
    }
    return this.#lastSplit!;
  }

  /** Current trust anchors (Vault's roots). */
  trustBundle(): Promise<Uint8Array[]> {
    return Promise.resolve(this.session.anchors.current(this.session.deps.clock.now()).anchors);
  }

  /** Token upkeep and issuer poll. Never throws; one run at a time. */
  maintain(): Promise<void> {
    this.#running ??= this.session.maintain(this.#ac.signal).finally(() =>
      this.#running = undefined
    );
    return this.#running;
  }

  /** Up while Vault answered the last call (issuer poll, leaf signing); else its error. */
  health(): HealthResult {
    return this.session.health.result();
  }

  /** Stops the timer, aborts requests in flight and closes connections. */
  async dispose(): Promise<void> {
    clearInterval(this.#timer);
    this.#ac.abort();
    await this.#running;
    this.session.close();
  }
}
