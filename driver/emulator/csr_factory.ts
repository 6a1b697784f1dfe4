/**
 * CSRs as the module makes them (protocol doc §4.2): PKCS#10 in PEM with LF line ends, subject
 * `CN=camblet-protected-workload`, SAN URI = the SPIFFE ID (plus DNS names), sha256WithRSA, and
 * ONE RSA-2048 key with public exponent 3 shared by every workload (generated "at module load").
 *
 * @module
 */
// @peculiar/x509 v2 resolves its crypto provider through tsyringe, which needs this polyfill first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

const RSA = {
  name: "RSASSA-PKCS1-v1_5",
  hash: "SHA-256",
  modulusLength: 2048,
  publicExponent: new Uint8Array([3]),
} as const;

/** Makes (and caches) kernel-style CSRs for one module-wide key. */
export class CsrFactory {
  readonly #keys: CryptoKeyPair;
  /** DER SubjectPublicKeyInfo of the shared key: every certificate answer must carry it. */
  readonly spki: Uint8Array;
  #cache = new Map<string, Promise<string>>();

  private constructor(keys: CryptoKeyPair, spki: Uint8Array) {
    this.#keys = keys;
    this.spki = spki;
  }

  /** Generates the module-wide key. */
  static async create(): Promise<CsrFactory> {
    const keys = await crypto.subtle.generateKey(RSA, true, ["sign", "verify"]) as CryptoKeyPair;
    const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
    return new CsrFactory(keys, spki);
  }

  /** A PEM CSR for `spiffeId` (and `dnsNames`), ending in `\n` as the kernel sends it. */
  csr(spiffeId: string, dnsNames: string[] = []): Promise<string> {
    const key = JSON.stringify([spiffeId, dnsNames]);
    let p = this.#cache.get(key);
    if (!p) {
      p = this.#make(spiffeId, dnsNames);
      this.#cache.set(key, p);
    }
    return p;
  }

  async #make(spiffeId: string, dnsNames: string[]): Promise<string> {
    const names: x509.JsonGeneralName[] = [{ type: "url", value: spiffeId }];
    for (const d of dnsNames) names.push({ type: "dns", value: d });
    const req = await x509.Pkcs10CertificateRequestGenerator.create({
      name: "CN=camblet-protected-workload",
      keys: this.#keys,
      signingAlgorithm: RSA,
      extensions: [new x509.SubjectAlternativeNameExtension(names)],
    });
    const pem = req.toString("pem").replace(/\r\n/g, "\n");
    return pem.endsWith("\n") ? pem : pem + "\n";
  }
}
