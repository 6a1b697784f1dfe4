/**
 * Signing a workload leaf in process with an issuer the agent holds: the self-signed CA's signer,
 * or an intermediate an upstream CA (Vault, SPIRE) certified for the agent's own key. One place
 * for the checks every local issuer makes: proof of possession, TTL caps, issuer expiry.
 *
 * @module
 */
import { CsrRejectedError, type SignRequest } from "../ca/types.ts";
import { parseCsr, verifyCsr } from "./csr.ts";
import { type CaCredentials, issueLeaf, type x509 } from "./x509.ts";

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
