/**
 * Signing a workload leaf in process with an issuer the agent holds: the self-signed CA's signer,
 * or an intermediate an upstream CA (Vault, SPIRE) certified for the agent's own key. One place
 * for the checks every local issuer makes: proof of possession, TTL caps, issuer expiry.
 *
 * @module
 */
import { CsrRejectedError, type SignRequest } from "../ca/types.ts";
import { parseCsr, verifyCsr } from "./csr.ts";
import {
  certificateDer,
  leafTbs,
  randomSerialBytes,
  readCsrDer,
  rsaSignatureAlgorithm,
  verifyCsrDer,
} from "./leaf_der.ts";
import { authorityKeyId, type CaCredentials, issueLeaf, type x509 } from "./x509.ts";

/** Limits for {@linkcode signLeafLocally}; times in epoch ms. */
export interface LocalLeafOptions {
  now: number;
  /** The CA's longest leaf; requests are clamped to it. */
  maxTtlMs: number;
  /** notBefore this far in the past, for clock skew between hosts. */
  backdateMs: number;
}

/**
 * Signs `request` with `issuer`: verifies the CSR's self-signature (else
 * {@linkcode CsrRejectedError}), puts exactly the requested SANs in, and ends the leaf at
 * now + min(ttl, maxTtl), never after the issuer's notAfter. Throws when the issuer has expired.
 *
 * @example
 * ```ts ignore
 * const leaf = await signLeafLocally(intermediate, request, { now, maxTtlMs, backdateMs: 120_000 });
 * ```
 */
export async function signLeafLocally(
  issuer: CaCredentials,
  request: SignRequest,
  options: LocalLeafOptions,
): Promise<x509.X509Certificate> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = parseCsr(request.csr);
  } catch (e) {
    throw new CsrRejectedError((e as Error).message);
  }
  if (!(await verifyCsr(csr))) {
    throw new CsrRejectedError("Cannot sign CSR: its signature does not verify");
  }
  const { now } = options;
  const ttl = Math.min(request.ttlMs, options.maxTtlMs);
  if (!(ttl > 0)) {
    throw new RangeError(`Cannot sign CSR: TTL ${request.ttlMs} ms is not positive`);
  }
  const issuerNotAfter = issuer.certificate.notAfter.getTime();
  const notAfter = Math.min(now + ttl, issuerNotAfter);
  if (notAfter <= now) {
    throw new Error(
      `Cannot sign CSR: CA certificate "${issuer.certificate.subject}" expired at ${
        new Date(issuerNotAfter).toISOString()
      }`,
    );
  }
  return await issueLeaf(issuer, {
    publicKey: csr.publicKey,
    subject: csr.subjectName,
    uris: [request.spiffeId],
    dnsNames: request.dnsNames,
    notBefore: new Date(now - options.backdateMs),
    notAfter: new Date(notAfter),
  });
}

/** A leaf as DER, with the one date callers track. */
export interface SignedLeafDer {
  der: Uint8Array;
  notAfter: Date;
}

interface IssuerDer {
  name: Uint8Array;
  algorithm: Uint8Array;
  aki: Uint8Array;
}
const issuerDer = new WeakMap<CaCredentials, IssuerDer>();

async function issuerParts(issuer: CaCredentials): Promise<IssuerDer | undefined> {
  const known = issuerDer.get(issuer);
  if (known) return known;
  const alg = issuer.keys.privateKey.algorithm as RsaHashedKeyAlgorithm;
  if (alg.name !== "RSASSA-PKCS1-v1_5") return undefined;
  const parts = {
    name: new Uint8Array(issuer.certificate.subjectName.toArrayBuffer()),
    algorithm: rsaSignatureAlgorithm(alg.hash.name),
    aki: new Uint8Array((await authorityKeyId(issuer.keys.publicKey)).rawData),
  };
  issuerDer.set(issuer, parts);
  return parts;
}

/**
 * {@linkcode signLeafLocally} on the fast path: the CSR read once in DER (the same `request.csr`
 * object the identity manager read is not read again), verified and signed natively, the leaf
 * built as DER directly. Same checks and same certificate contents; issuers that are not RSA
 * PKCS#1 v1.5 and CSRs it cannot verify natively go through {@linkcode signLeafLocally}.
 */
export async function signLeafDer(
  issuer: CaCredentials,
  request: SignRequest,
  options: LocalLeafOptions,
): Promise<SignedLeafDer> {
  const parts = await issuerParts(issuer);
  let csr;
  try {
    csr = readCsrDer(request.csr);
  } catch (e) {
    throw new CsrRejectedError((e as Error).message);
  }
  const verified = parts ? await verifyCsrDer(csr) : undefined;
  if (!parts || verified === undefined) {
    const leaf = await signLeafLocally(issuer, request, options);
    return { der: new Uint8Array(leaf.rawData), notAfter: leaf.notAfter };
  }
  if (!verified) throw new CsrRejectedError("Cannot sign CSR: its signature does not verify");
  const { now } = options;
  const ttl = Math.min(request.ttlMs, options.maxTtlMs);
  if (!(ttl > 0)) {
    throw new RangeError(`Cannot sign CSR: TTL ${request.ttlMs} ms is not positive`);
  }
  const issuerNotAfter = issuer.certificate.notAfter.getTime();
  // Whole seconds, as DER times carry them.
  const notAfter = new Date(Math.floor(Math.min(now + ttl, issuerNotAfter) / 1000) * 1000);
  if (notAfter.getTime() <= now) {
    throw new Error(
      `Cannot sign CSR: CA certificate "${issuer.certificate.subject}" expired at ${
        new Date(issuerNotAfter).toISOString()
      }`,
    );
  }
  const tbs = leafTbs({
    serial: randomSerialBytes(),
    signatureAlgorithm: parts.algorithm,
    issuer: parts.name,
    notBefore: new Date(now - options.backdateMs),
    notAfter,
    subject: csr.subject,
    spki: csr.spki,
    uris: [request.spiffeId],
    dnsNames: request.dnsNames,
    authorityKeyId: parts.aki,
  });
  const signature = new Uint8Array(
    await crypto.subtle.sign("RSASSA-PKCS1-v1_5", issuer.keys.privateKey, tbs),
  );
  return { der: certificateDer(tbs, parts.algorithm, signature), notAfter };
}
