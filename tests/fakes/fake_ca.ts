/**
 * A configurable test CA for kernel-link tests (the real one is the identity manager with its CA
 * plugins): signs kernel CSRs with an RSA-2048 root and PKCS#1 v1.5, builds the module's answer,
 * makes refusal certificates (the CSR's key, signed by a throw-away key in no bundle), and can be
 * slowed down or made to fail.
 *
 * @module
 */
// @peculiar/x509 v2 resolves its crypto provider through tsyringe, which needs this polyfill first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { encodeBase64 } from "../../driver/codec.ts";

const RSA = {
  name: "RSASSA-PKCS1-v1_5",
  hash: "SHA-256",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
};

function b64(buf: ArrayBuffer): string {
  return encodeBase64(new Uint8Array(buf));
}

async function rsaAnchor(cert: x509.X509Certificate): Promise<Record<string, unknown>> {
  const key = await cert.publicKey.export();
  const jwk = await crypto.subtle.exportKey("jwk", key);
  const dec = (s: string) => {
    const std = s.replace(/-/g, "+").replace(/_/g, "/");
    const padded = std + "=".repeat((4 - (std.length % 4)) % 4);
    return encodeBase64(Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)));
  };
  return {
    rawSubject: b64(cert.subjectName.toArrayBuffer()),
    publicKey: { RSA_N: dec(jwk.n!), RSA_E: dec(jwk.e!) },
  };
}

/** Behaviour knobs, changeable while a test runs. */
export interface FakeCaBehaviour {
  /** Delay before answering a signature, ms. */
  delayMs: number;
  /** Reject every signature with this message. */
  failWith?: string | undefined;
  /** Return this string instead of a certificate answer. */
  garbage?: string | undefined;
}

/** A root CA for tests. */
export class FakeCa {
  readonly root: x509.X509Certificate;
  readonly #keys: CryptoKeyPair;
  readonly #refusalKeys: CryptoKeyPair;
  readonly behaviour: FakeCaBehaviour = { delayMs: 0 };
  issued = 0;

  private constructor(root: x509.X509Certificate, keys: CryptoKeyPair, refusalKeys: CryptoKeyPair) {
    this.root = root;
    this.#keys = keys;
    this.#refusalKeys = refusalKeys;
  }

  /** A new RSA-2048 root valid for a day. */
  static async create(trustDomain = "acme.test"): Promise<FakeCa> {
    const keys = await crypto.subtle.generateKey(RSA, true, ["sign", "verify"]) as CryptoKeyPair;
    const refusalKeys = await crypto.subtle.generateKey(RSA, true, [
      "sign",
      "verify",
    ]) as CryptoKeyPair;
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      name: `O=${trustDomain}, CN=${trustDomain} fake test root`,
      keys,
      signingAlgorithm: RSA,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 86_400_000),
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    });
    return new FakeCa(root, keys, refusalKeys);
  }

  /** Signs a kernel CSR and returns the module's answer JSON (honours {@linkcode behaviour}). */
  async sign(csrPem: string, ttlSeconds = 3600): Promise<string> {
    const b = this.behaviour;
    if (b.delayMs > 0) await new Promise((r) => setTimeout(r, b.delayMs));
    if (b.failWith) throw new Error(b.failWith);
    if (b.garbage !== undefined) return b.garbage;
    const leaf = await this.#leaf(csrPem, this.root.subject, this.#keys.privateKey, ttlSeconds);
    this.issued++;
    return JSON.stringify({
      certificate: { raw: b64(leaf.rawData) },
      chain: [],
      trust_anchors: [await rsaAnchor(this.root)],
    });
  }

  /** A refusal answer: the CSR's key, issued by a throw-away name and key no bundle holds. */
  async refusal(csrPem: string): Promise<string> {
    const leaf = await this.#leaf(csrPem, "CN=camblet refusal", this.#refusalKeys.privateKey, 60);
    return JSON.stringify({
      certificate: { raw: b64(leaf.rawData) },
      chain: [],
      trust_anchors: [await rsaAnchor(this.root)],
    });
  }

  async #leaf(
    csrPem: string,
    issuer: string,
    key: CryptoKey,
    ttlSeconds: number,
  ): Promise<x509.X509Certificate> {
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    const san = csr.extensions.find((e) => e instanceof x509.SubjectAlternativeNameExtension) as
      | x509.SubjectAlternativeNameExtension
      | undefined;
    const serial = crypto.getRandomValues(new Uint8Array(16));
    serial[0]! &= 0x7f;
    return await x509.X509CertificateGenerator.create({
      serialNumber: Array.from(serial, (b) => b.toString(16).padStart(2, "0")).join(""),
      subject: csr.subject,
      issuer,
      notBefore: new Date(Date.now() - 30_000),
      notAfter: new Date(Date.now() + ttlSeconds * 1000),
      signingKey: key,
      publicKey: csr.publicKey,
      signingAlgorithm: RSA,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        new x509.ExtendedKeyUsageExtension([
          x509.ExtendedKeyUsage.serverAuth,
          x509.ExtendedKeyUsage.clientAuth,
        ]),
        ...(san ? [new x509.SubjectAlternativeNameExtension(san.names.toJSON(), true)] : []),
      ],
    });
  }
}

/** Hex of the DER SubjectPublicKeyInfo of a PEM CSR (the key a refusal must carry). */
export function csrKeyId(csrPem: string): string {
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  return Array.from(new Uint8Array(csr.publicKey.rawData), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}
