/**
 * Refusal certificates. Answering `csr_sign` with `error` (or late) crashes camblet-driver 0.8.0
 * (protocol doc, "Observed on the real module"), so a refusal is a well-formed leaf for the CSR's
 * key, signed by a throw-away issuer that is in no trust bundle: the kernel stores it, every
 * handshake with it fails, and its short validity makes the kernel ask again soon.
 *
 * The issuer's key is ECDSA P-256: made in a millisecond where an RSA key took 0.2–0.7 s of a
 * busy host's start, and the module takes ECDSA-signed leaves without complaint (capture
 * `ecdsa-root` in the protocol test vectors: the answers were stored, handshakes then failed,
 * which is what a refusal is for). Trust anchors and the leaf's own key stay RSA. The spare key
 * (for a CSR that cannot be read, and the placeholder anchor) is a fixed RSA public key whose
 * private key was discarded when it was made: nobody can use what it certifies.
 *
 * @module
 */
import type { KeyObject } from "node:crypto";
import { type Clock, systemClock } from "../../plugins/types.ts";
// Types only: @peculiar/x509 costs an isolate ~20 MB, and the kernel worker needs none of it.
import type { x509 } from "../../plugins/sdk/x509.ts";
import { certificateParts } from "../../plugins/sdk/_der.ts";
import { certificateDer, leafTbs, randomSerialBytes, tlv } from "../../plugins/sdk/leaf_der.ts";

/** Options for {@linkcode RefusalIssuer.create}. */
export interface RefusalIssuerOptions {
  clock: Clock;
  /** Lifetime of a refusal certificate (default 60 s). */
  validityMs?: number;
  /** Also prepare {@linkcode RefusalIssuer.refusalSync} (the kernel worker's deadline path). */
  synchronous?: boolean;
}

/** What {@linkcode RefusalIssuer.exportMaterial} hands to another isolate (plain data). */
export interface RefusalMaterial {
  issuerPkcs8: Uint8Array;
  issuerCertificate: Uint8Array;
  placeholderCertificate: Uint8Array;
}

/** A refusal certificate: DER, and what the audit log records of it. */
export interface Refusal {
  der: Uint8Array;
  serial: string;
  notAfter: Date;
}

/** How many distinct CSR keys keep a prepared refusal (the real module has one key). */
export const REFUSAL_CACHE_KEYS = 16;

const utf8 = (s: string) => new TextEncoder().encode(s);
const name = (o: string, cn: string) =>
  tlv(
    0x30,
    tlv(0x31, tlv(0x30, new Uint8Array([6, 3, 85, 4, 10]), tlv(0x0c, utf8(o)))),
    tlv(0x31, tlv(0x30, new Uint8Array([6, 3, 85, 4, 3]), tlv(0x0c, utf8(cn)))),
  );
/** `O=camblet refusal, CN=camblet-refused`, DER. */
const SUBJECT_DER = name("camblet refusal", "camblet-refused");
const ISSUER_DER = name("camblet refusal", "camblet refusal issuer (untrusted)");
const PLACEHOLDER_DER = name("camblet refusal", "camblet refusal placeholder (untrusted)");

const EC_KEY = { name: "ECDSA", namedCurve: "P-256" } as const;
const EC_SIGN = { name: "ECDSA", hash: "SHA-256" } as const;
/** AlgorithmIdentifier ecdsa-with-SHA256 (1.2.840.10045.4.3.2, no parameters). */
const ECDSA_SHA256 = new Uint8Array([
  0x30,
  0x0a,
  0x06,
  0x08,
  0x2a,
  0x86,
  0x48,
  0xce,
  0x3d,
  4,
  3,
  2,
]);

/**
 * RSA-2048 SubjectPublicKeyInfo of the spare key. Made with `openssl genrsa 2048`; only the public
 * half was kept, so a certificate for it is of no use to anyone.
 */
const SPARE_SPKI_B64 =
  "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA7aaw9IqsIKGYGK8Wa74kBOwTuF1c/ELZ4rg6x+jl8d67" +
  "210NPi1C5vubOFbC2yfAIlthFpOGwvZfIT/CcjOd2FRKM+YNvx3kw68Di7MOLpzp1uGnjRuFHdPiN3Yf3lR2/BGs" +
  "bArFPqos5jRshCOgwMONYW7yN7gsbMHfpOhXXsxNLafE28aG+YOZPjTiaDv/AfKqdLwvyNikVXKqDDiwdXJyyzu2" +
  "HNXaI8Sb+JZBPXAWY8CwzIDyNZHiR+xFEC+58unF3DHfj16LPz/nYEwtrA/7/q/yjAB3yDhNNjikKFapV86ZchZR" +
  "wYq+NtxaFY+11FHb31bxJEXHWIZsJBRnuQIDAQAB";

function fromB64(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

/** WebCrypto's ECDSA signature (r ‖ s) as X.509 wants it: SEQUENCE { INTEGER r, INTEGER s }. */
function ecdsaDer(raw: Uint8Array): Uint8Array {
  const half = raw.length / 2;
  const int = (b: Uint8Array) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b.subarray(i);
    return tlv(0x02, v[0]! & 0x80 ? new Uint8Array([0, ...v]) : v);
  };
  return tlv(0x30, int(raw.subarray(0, half)), int(raw.subarray(half)));
}

async function ecSign(key: CryptoKey, tbs: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return ecdsaDer(new Uint8Array(await crypto.subtle.sign(EC_SIGN, key, tbs)));
}

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
  #issuerKey: CryptoKey;
  #issuerDer: Uint8Array;
  /** The placeholder root (its key certifies nothing: only the certificate is kept). */
  #spareDer: Uint8Array;
  #clock: Clock;
  #validityMs: number;
  #parts: RefusalParts;
  /** node:crypto's synchronous signer, loaded in the background (its import costs ~0.2 s). */
  #syncSign: ((tbs: Uint8Array) => Uint8Array) | undefined;
  #syncLoad: Promise<void>;
  #spareSpki: Uint8Array;
  #cache = new Map<string, Refusal>();

  private constructor(
    issuerKey: CryptoKey,
    issuerDer: Uint8Array,
    spareDer: Uint8Array,
    options: RefusalIssuerOptions,
  ) {
    this.#issuerKey = issuerKey;
    this.#issuerDer = issuerDer;
    this.#spareDer = spareDer;
    this.#clock = options.clock;
    this.#validityMs = options.validityMs ?? 60_000;
    this.#parts = {
      issuer: certificateParts(issuerDer).subject,
      subject: SUBJECT_DER,
      algorithm: ECDSA_SHA256,
    };
    this.#spareSpki = certificateParts(spareDer).spki;
    this.#syncLoad = options.synchronous ? this.#loadSyncSigner() : Promise.resolve();
  }

  /**
   * Generates the throw-away issuer (an ECDSA P-256 key, a millisecond's work); the placeholder
   * certificate it signs names the spare key.
   */
  static async create(options: RefusalIssuerOptions): Promise<RefusalIssuer> {
    const now = options.clock.now();
    const window = { notBefore: new Date(now - 60_000), notAfter: new Date(now + 3650 * 864e5) };
    const keys = await crypto.subtle.generateKey(EC_KEY, true, ["sign", "verify"]);
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
    const cert = async (subject: Uint8Array, key: Uint8Array) => {
      const tbs = leafTbs({
        serial: randomSerialBytes(),
        signatureAlgorithm: ECDSA_SHA256,
        issuer: ISSUER_DER,
        subject,
        spki: key,
        ...window,
        bare: true,
      });
      return certificateDer(tbs, ECDSA_SHA256, await ecSign(keys.privateKey, tbs));
    };
    const [issuerDer, spareDer] = await Promise.all([
      cert(ISSUER_DER, spki),
      cert(PLACEHOLDER_DER, fromB64(SPARE_SPKI_B64)),
    ]);
    return new RefusalIssuer(keys.privateKey, issuerDer, spareDer, options);
  }

  /** The issuer's key and certificates, for another isolate (the kernel worker) to use the same. */
  async exportMaterial(): Promise<RefusalMaterial> {
    return {
      issuerPkcs8: new Uint8Array(await crypto.subtle.exportKey("pkcs8", this.#issuerKey)),
      issuerCertificate: this.#issuerDer.slice(),
      placeholderCertificate: this.#spareDer.slice(),
    };
  }

  /** An issuer from {@linkcode exportMaterial}. Throws for material that cannot be read. */
  static async fromMaterial(
    m: RefusalMaterial,
    options: RefusalIssuerOptions,
  ): Promise<RefusalIssuer> {
    const key = await crypto.subtle.importKey("pkcs8", m.issuerPkcs8.slice(), EC_KEY, true, [
      "sign",
    ]);
    return new RefusalIssuer(key, m.issuerCertificate, m.placeholderCertificate, options);
  }

  static #shared: Promise<RefusalIssuer> | undefined;

  /**
   * This isolate's issuer on the system clock with the default validity, created once: the
   * identity manager and the kernel plane share it (and the kernel worker gets its material).
   */
  static shared(): Promise<RefusalIssuer> {
    RefusalIssuer.#shared ??= RefusalIssuer.create({ clock: systemClock });
    return RefusalIssuer.#shared;
  }

  async #loadSyncSigner(): Promise<void> {
    try {
      const pkcs8 = new Uint8Array(
        await crypto.subtle.exportKey("pkcs8", this.#issuerKey),
      );
      const { createPrivateKey, sign } = await import("node:crypto");
      const key: KeyObject = createPrivateKey({
        key: pkcs8 as unknown as Buffer,
        format: "der",
        type: "pkcs8",
      });
      // node:crypto writes ECDSA signatures in DER already.
      this.#syncSign = (tbs) => new Uint8Array(sign("sha256", tbs, key));
    } catch { /* refusalSync then throws; the caller falls back to a prepared answer */ }
  }

  /**
   * Resolves once {@linkcode refusalSync} can sign (with `synchronous`): the kernel worker waits
   * for it before it opens the device, so that loading node:crypto never competes with a burst.
   */
  async syncReady(): Promise<boolean> {
    await this.#syncLoad;
    return this.#syncSign !== undefined;
  }

  /**
   * A certificate of the spare key, which signs nothing: the anchor to send when no real anchor
   * is known (the kernel needs at least one RSA anchor, and it must not be the refusal issuer).
   */
  get placeholderAnchor(): Uint8Array {
    return this.#spareDer.slice();
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
    const sig = await ecSign(this.#issuerKey, tbs);
    const der = certificateDer(tbs, this.#parts.algorithm, sig);
    return this.#keep(spki, { der, serial: hex(serial), notAfter });
  }

  /** {@linkcode refusal} without awaiting: one synchronous ECDSA signature when not cached. */
  refusalSync(spki: Uint8Array | undefined): Refusal {
    const key = spki ?? this.#spareSpki;
    const known = this.cached(key);
    if (known) return known;
    if (!this.#syncSign) throw new Error("Cannot sign a refusal synchronously yet");
    const { tbs, serial, notAfter } = this.#tbs(key);
    const sig = this.#syncSign(tbs);
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
      const { x509 } = await import("../../plugins/sdk/x509.ts");
      const c = new x509.X509Certificate(der.slice().buffer as ArrayBuffer);
      const ours = new x509.X509Certificate(this.#issuerDer.slice().buffer as ArrayBuffer);
      return c.issuer === ours.subject &&
        await c.verify({ publicKey: await ours.publicKey.export(), signatureOnly: true });
    } catch {
      return false;
    }
  }
}
