/**
 * Certificate issuance for CA plugins, in process with WebCrypto (@peculiar/x509): leaves for
 * workloads, roots and intermediates. Signatures are PKCS#1 v1.5 for RSA keys (camblet-driver's
 * BearSSL cannot verify PSS).
 *
 * @module
 */
// @peculiar/x509 v2 resolves its crypto provider through tsyringe, which needs this polyfill first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { generateRsaKeyPair, type KeyPair, signingAlgorithm } from "./keys.ts";

export { x509 };

/** A CA that can sign: its certificate and key pair. */
export interface CaCredentials {
  certificate: x509.X509Certificate;
  keys: KeyPair;
}

/**
 * A random positive serial number of 20 bytes (at least 158 random bits), as hex.
 *
 * @example
 * ```ts
 * import { randomSerial } from "./x509.ts";
 * randomSerial().length; // 40
 * ```
 */
export function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(20));
  // Clear the sign bit and keep the top byte non-zero, so DER keeps all 20 bytes.
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// AKI needs an export and a hash of the issuer key: compute it once per issuer key.
const akiCache = new WeakMap<CryptoKey, x509.Extension>();

/** The authorityKeyIdentifier extension for `key`'s certificates (cached per key). */
export async function authorityKeyId(key: CryptoKey): Promise<x509.Extension> {
  let ext = akiCache.get(key);
  if (!ext) {
    ext = await x509.AuthorityKeyIdentifierExtension.create(key);
    akiCache.set(key, ext);
  }
  return ext;
}

/** What a workload leaf carries. */
export interface LeafOptions {
  /** The workload's key: from the CSR. */
  publicKey: x509.PublicKey | CryptoKey;
  /** Subject DN; the CSR's subject in practice (`CN=camblet-protected-workload`). */
  subject: string | x509.Name;
  /** URI SANs (the SPIFFE ID). */
  uris?: readonly string[];
  dnsNames?: readonly string[];
  notBefore: Date;
  notAfter: Date;
}

/**
 * Issues a workload leaf: basicConstraints CA:FALSE, keyUsage digitalSignature+keyEncipherment,
 * extKeyUsage serverAuth+clientAuth, SANs as given, SKI/AKI, random serial.
 */
export async function issueLeaf(
  issuer: CaCredentials,
  options: LeafOptions,
): Promise<x509.X509Certificate> {
  const names = [
    ...(options.uris ?? []).map((value) => ({ type: "url" as const, value })),
    ...(options.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
  ];
  const emptySubject = typeof options.subject === "string"
    ? options.subject === ""
    : options.subject.toString() === "";
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
      true,
    ),
    new x509.ExtendedKeyUsageExtension(
      [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
      false,
    ),
    await authorityKeyId(issuer.keys.publicKey),
  ];
  // RFC 5280 §4.2.1.6: SANs are critical when the subject is empty.
  if (names.length > 0) {
    extensions.push(new x509.SubjectAlternativeNameExtension(names, emptySubject));
  }
  return await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: options.subject,
    issuer: issuer.certificate.subjectName,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    publicKey: options.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: signingAlgorithm(issuer.keys.privateKey),
    extensions,
  });
}

/** Options for a CA certificate. */
export interface CaOptions {
  commonName: string;
  organization?: string;
  /** Key to certify; a new RSA key of `keySize` bits when absent. */
  keys?: KeyPair;
  keySize?: number;
  notBefore: Date;
  notAfter: Date;
  /** URI SAN, e.g. `spiffe://acme.corp/ca-1` (as `ca create-intermediate` adds). */
  uri?: string;
  /** basicConstraints pathLenConstraint; none when absent. */
  pathLength?: number;
}

function caName(o: CaOptions): string {
  const esc = (s: string) => s.replace(/([,+"\\<>;=])/g, "\\$1");
  return (o.organization ? `O=${esc(o.organization)}, ` : "") + `CN=${esc(o.commonName)}`;
}

async function caExtensions(keys: KeyPair, o: CaOptions): Promise<x509.Extension[]> {
  const ext: x509.Extension[] = [
    new x509.BasicConstraintsExtension(true, o.pathLength, true),
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign |
        x509.KeyUsageFlags.digitalSignature,
      true,
    ),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  if (o.uri) ext.push(new x509.SubjectAlternativeNameExtension([{ type: "url", value: o.uri }]));
  return ext;
}

/**
 * Creates a self-signed root CA (RSA-2048 unless `keys`/`keySize` say otherwise).
 *
 * @example
 * ```ts
 * import { createRootCa } from "./x509.ts";
 * const now = Date.now();
 * const root = await createRootCa({
 *   commonName: "Camblet root CA",
 *   notBefore: new Date(now),
 *   notAfter: new Date(now + 3600_000),
 * });
 * root.certificate.subject; // "CN=Camblet root CA"
 * ```
 */
export async function createRootCa(options: CaOptions): Promise<CaCredentials> {
  const keys = options.keys ?? await generateRsaKeyPair(options.keySize ?? 2048);
  const name = caName(options);
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: name,
    issuer: name,
    notBefore: options.notBefore,
    notAfter: options.notAfter,
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    signingAlgorithm: signingAlgorithm(keys.privateKey),
    extensions: await caExtensions(keys, options),
  });
  return { certificate, keys };
}

/** Creates an intermediate CA signed by `parent`; its notAfter never exceeds the parent's. */
export async function createIntermediateCa(
  parent: CaCredentials,
  options: CaOptions,
): Promise<CaCredentials> {
  const keys = options.keys ?? await generateRsaKeyPair(options.keySize ?? 2048);
  const notAfter = new Date(
    Math.min(options.notAfter.getTime(), parent.certificate.notAfter.getTime()),
  );
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: caName(options),
    issuer: parent.certificate.subjectName,
    notBefore: options.notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: parent.keys.privateKey,
    signingAlgorithm: signingAlgorithm(parent.keys.privateKey),
    extensions: [
      ...await caExtensions(keys, options),
      await authorityKeyId(parent.keys.publicKey),
    ],
  });
  return { certificate, keys };
}

/** `RSA`, `EC` or the raw algorithm name of a certificate's key. */
export function keyType(cert: x509.X509Certificate): string {
  const name = cert.publicKey.algorithm.name;
  if (name === "RSASSA-PKCS1-v1_5" || name === "RSA-PSS" || name === "RSA-OAEP") return "RSA";
  if (name === "ECDSA" || name === "ECDH") return "EC";
  return name;
}

/** True when the certificate is a CA (basicConstraints CA:TRUE). */
export function isCa(cert: x509.X509Certificate): boolean {
  return cert.getExtension(x509.BasicConstraintsExtension)?.ca === true;
}

/** True when subject equals issuer and the certificate verifies with its own key. */
export async function isSelfSigned(cert: x509.X509Certificate): Promise<boolean> {
  if (cert.subject !== cert.issuer) return false;
  return await cert.verify({ signatureOnly: true });
}

export { certificateParts, rsaPublicNumbers } from "./_der.ts";
