/**
 * Refusal certificates. Answering `csr_sign` with `error` (or late) crashes camblet-driver 0.8.0
 * (protocol doc, "Observed on the real module"), so a refusal is a well-formed leaf for the CSR's
 * key, signed by a throw-away issuer that is in no trust bundle: the kernel stores it, every
 * handshake with it fails, and its short validity makes the kernel ask again soon.
 *
 * @module
 */
import type { Clock } from "../../plugins/types.ts";
import { type CaCredentials, createRootCa, issueLeaf, x509 } from "../../plugins/sdk/x509.ts";

/** Options for {@linkcode RefusalIssuer.create}. */
export interface RefusalIssuerOptions {
  clock: Clock;
  /** Lifetime of a refusal certificate (default 60 s). */
  validityMs?: number;
}

/** Issues refusal certificates; its keys are generated once, so refusing is as fast as signing. */
export class RefusalIssuer {
  #issuer: CaCredentials;
  #spare: CaCredentials;
  #clock: Clock;
  #validityMs: number;

  private constructor(
    issuer: CaCredentials,
    spare: CaCredentials,
    options: RefusalIssuerOptions,
  ) {
    this.#issuer = issuer;
    this.#spare = spare;
    this.#clock = options.clock;
    this.#validityMs = options.validityMs ?? 60_000;
  }

  /** Generates the throw-away issuer (and a spare key for CSRs that cannot be read at all). */
  static async create(options: RefusalIssuerOptions): Promise<RefusalIssuer> {
    const now = options.clock.now();
    const window = { notBefore: new Date(now - 60_000), notAfter: new Date(now + 3650 * 864e5) };
    const [issuer, spare] = await Promise.all([
      createRootCa({ commonName: "camblet refusal issuer (untrusted)", ...window }),
      createRootCa({ commonName: "camblet refusal placeholder (untrusted)", ...window }),
    ]);
    return new RefusalIssuer(issuer, spare, options);
  }

  /**
   * A self-signed root that signs nothing: the anchor to send when no real anchor is known (the
   * kernel needs at least one, and it must not be the refusal issuer).
   */
  get placeholderAnchor(): Uint8Array {
    return new Uint8Array(this.#spare.certificate.rawData);
  }

  /**
   * Issues a refusal certificate for `publicKey` (the CSR's key); with no key (the CSR could not
   * be read) it certifies a spare key, which the kernel cannot use either.
   */
  async issue(publicKey: x509.PublicKey | undefined): Promise<Uint8Array> {
    const now = this.#clock.now();
    const leaf = await issueLeaf(this.#issuer, {
      publicKey: publicKey ?? this.#spare.keys.publicKey,
      subject: "O=camblet refusal, CN=camblet-refused",
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + this.#validityMs),
    });
    return new Uint8Array(leaf.rawData);
  }

  /** True if `der` was issued by this refusal issuer (for tests and the emulator). */
  async issued(der: Uint8Array): Promise<boolean> {
    try {
      const c = new x509.X509Certificate(der.slice().buffer as ArrayBuffer);
      return c.issuer === this.#issuer.certificate.subject &&
        await c.verify({ publicKey: this.#issuer.keys.publicKey, signatureOnly: true });
    } catch {
      return false;
    }
  }
}
