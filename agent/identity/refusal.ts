/**
 * Refusal certificates. Answering `csr_sign` with `error` (or late) crashes camblet-driver 0.8.0
 * (protocol doc, "Observed on the real module"), so a refusal is a well-formed leaf for the CSR's
 * key, signed by a throw-away issuer that is in no trust bundle: the kernel stores it, every
 * handshake with it fails, and its short validity makes the kernel ask again soon.
 *
 * @module
 */
import { createPrivateKey, type KeyObject, sign as signSync } from "node:crypto";
import type { Clock } from "../../plugins/types.ts";
import { type CaCredentials, createRootCa, x509 } from "../../plugins/sdk/x509.ts";
import {
  certificateDer,
  leafTbs,
  randomSerialBytes,
  rsaSignatureAlgorithm,
} from "../../plugins/sdk/leaf_der.ts";

/** Options for {@linkcode RefusalIssuer.create}. */
export interface RefusalIssuerOptions {
  clock: Clock;
  /** Lifetime of a refusal certificate (default 60 s). */
  validityMs?: number;
}

/** A refusal certificate: DER, and what the audit log records of it. */
export interface Refusal {
  der: Uint8Array;
  serial: string;
  notAfter: Date;
}

/** How many distinct CSR keys keep a prepared refusal (the real module has one key). */
export const REFUSAL_CACHE_KEYS = 16;

const SUBJECT = "O=camblet refusal, CN=camblet-refused";

interface RefusalParts {
  issuer: Uint8Array;
  subject: Uint8Array;
  algorithm: Uint8Array;
}
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));

/**
 * Issues refusal certificates; its keys are generated once, and a refusal is built in DER and
 * reused per CSR key for half its validity (bounded to {@linkcode REFUSAL_CACHE_KEYS} keys), so
 * refusing costs nothing under a burst. {@linkcode RefusalIssuer.issueSync} builds one without
 * awaiting anything, for a deadline that cannot wait.
 */
export class RefusalIssuer {
  #issuer: CaCredentials;
  #spare: CaCredentials;
  #clock: Clock;
  #validityMs: number;
  #parts: RefusalParts;
  #syncKey: KeyObject;
  #spareSpki: Uint8Array;
  #cache = new Map<string, Refusal>();

  private constructor(
    issuer: CaCredentials,
    spare: CaCredentials,
    options: RefusalIssuerOptions,
    parts: RefusalParts,
    syncKey: KeyObject,
    spareSpki: Uint8Array,
  ) {
    this.#issuer = issuer;
    this.#spare = spare;
    this.#clock = options.clock;
    this.#validityMs = options.validityMs ?? 60_000;
    this.#parts = parts;
    this.#syncKey = syncKey;
    this.#spareSpki = spareSpki;
  }

  /** Generates the throw-away issuer (and a spare key for CSRs that cannot be read at all). */
  static async create(options: RefusalIssuerOptions): Promise<RefusalIssuer> {
    const now = options.clock.now();
    const window = { notBefore: new Date(now - 60_000), notAfter: new Date(now + 3650 * 864e5) };
    const [issuer, spare] = await Promise.all([
      createRootCa({ commonName: "camblet refusal issuer (untrusted)", ...window }),
      createRootCa({ commonName: "camblet refusal placeholder (untrusted)", ...window }),
    ]);
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", issuer.keys.privateKey));
    const parts = {
      issuer: new Uint8Array(issuer.certificate.subjectName.toArrayBuffer()),
      subject: new Uint8Array(new x509.Name(SUBJECT).toArrayBuffer()),
      algorithm: rsaSignatureAlgorithm("SHA-256"),
    };
    const spareSpki = new Uint8Array(spare.certificate.publicKey.rawData);
    return new RefusalIssuer(
      issuer,
      spare,
      options,
      parts,
      createPrivateKey({ key: pkcs8 as unknown as Buffer, format: "der", type: "pkcs8" }),
      spareSpki,
    );
  }

  /**
   * A self-signed root that signs nothing: the anchor to send when no real anchor is known (the
   * kernel needs at least one, and it must not be the refusal issuer).
   */
  get placeholderAnchor(): Uint8Array {
    return new Uint8Array(this.#spare.certificate.rawData);
  }

  /** CSR keys with a prepared refusal (at most {@linkcode REFUSAL_CACHE_KEYS}). */
  get cachedKeys(): number {
    return this.#cache.size;
  }

  /** The prepared refusal for `spki` while it has at least half its validity left. */
  cached(spki: Uint8Array): Refusal | undefined {
    const id = b64(spki);
    const r = this.#cache.get(id);
    if (!r) return undefined;
    if (r.notAfter.getTime() - this.#clock.now() < this.#validityMs / 2) {
      this.#cache.delete(id);
      return undefined;
    }
    return r;
  }

  #keep(spki: Uint8Array, r: Refusal): Refusal {
    const id = b64(spki);
    this.#cache.delete(id);
    if (this.#cache.size >= REFUSAL_CACHE_KEYS) {
      this.#cache.delete(this.#cache.keys().next().value!);
    }
    this.#cache.set(id, r);
    return r;
  }

  #tbs(spki: Uint8Array): { tbs: Uint8Array<ArrayBuffer>; serial: Uint8Array; notAfter: Date } {
    const now = this.#clock.now();
    const serial = randomSerialBytes();
    const notAfter = new Date(Math.floor((now + this.#validityMs) / 1000) * 1000);
    const tbs = leafTbs({
      serial,
      signatureAlgorithm: this.#parts.algorithm,
      issuer: this.#parts.issuer,
      notBefore: new Date(now - 60_000),
      notAfter,
      subject: this.#parts.subject,
      spki,
      // No extensions: a refusal vouches for nothing, and under a burst every byte of the answer
      // counts against the kernel's 2 MiB between two reads.
      bare: true,
    });
    return { tbs, serial, notAfter };
  }

  #spkiOf(publicKey: x509.PublicKey | Uint8Array | undefined): Uint8Array {
    if (publicKey === undefined) return this.#spareSpki;
    return publicKey instanceof Uint8Array ? publicKey : new Uint8Array(publicKey.rawData);
  }

  /**
   * A refusal for `publicKey` (the CSR's key, or its SubjectPublicKeyInfo DER); with no key (the
   * CSR could not be read) it certifies a spare key, which the kernel cannot use either. Signed
   * natively off the JS thread; reused while fresh.
   */
  async refusal(publicKey: x509.PublicKey | Uint8Array | undefined): Promise<Refusal> {
    const spki = this.#spkiOf(publicKey);
    const known = this.cached(spki);
    if (known) return known;
    const { tbs, serial, notAfter } = this.#tbs(spki);
    const sig = new Uint8Array(
      await crypto.subtle.sign("RSASSA-PKCS1-v1_5", this.#issuer.keys.privateKey, tbs),
    );
    const der = certificateDer(tbs, this.#parts.algorithm, sig);
    return this.#keep(spki, { der, serial: hex(serial), notAfter });
  }

  /** {@linkcode refusal} without awaiting: one synchronous RSA signature (a few ms) when not cached. */
  refusalSync(spki: Uint8Array | undefined): Refusal {
    const key = spki ?? this.#spareSpki;
    const known = this.cached(key);
    if (known) return known;
    const { tbs, serial, notAfter } = this.#tbs(key);
    const sig = new Uint8Array(signSync("sha256", tbs, this.#syncKey));
    const der = certificateDer(tbs, this.#parts.algorithm, sig);
    return this.#keep(key, { der, serial: hex(serial), notAfter });
  }

  /** The DER of {@linkcode refusal}. */
  async issue(publicKey: x509.PublicKey | Uint8Array | undefined): Promise<Uint8Array> {
    return (await this.refusal(publicKey)).der;
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
