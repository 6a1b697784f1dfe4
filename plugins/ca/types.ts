/**
 * The CA plugin kind. The CA signs; the identity manager (agent/identity) decides what may be
 * signed. A CA plugin therefore stays dumb: it never looks at policies or labels, and it signs
 * exactly the SANs it is given.
 *
 * @module
 */
import type { PluginInstance } from "../types.ts";

/** What the identity manager asks a CA to sign, after every policy check passed. */
export interface SignRequest {
  /**
   * The PKCS#10 request (DER). The CA must verify its self-signature (proof of possession) and
   * refuse with {@linkcode CsrRejectedError} when it fails; the leaf gets the CSR's public key.
   */
  csr: Uint8Array;
  /** The one URI SAN to put in the leaf. */
  spiffeId: string;
  /** DNS SANs to put in the leaf (already checked against policy). */
  dnsNames: readonly string[];
  /**
   * Requested lifetime. The CA must not exceed it, nor its own {@linkcode CertificateAuthority.maxTtlMs},
   * nor its issuer's notAfter; it may issue shorter (then it says so through the leaf's notAfter).
   */
  ttlMs: number;
}

/** A signed leaf, DER encoded. */
export interface SignedCertificate {
  certificate: Uint8Array;
  /** Intermediates from the leaf's issuer up, excluding the leaf and the trust anchors. */
  chain: Uint8Array[];
  /**
   * Every self-signed root a peer should trust right now (during a rotation: old and new). The
   * leaf must chain to one of them through `chain`.
   */
  trustAnchors: Uint8Array[];
}

/**
 * A certificate authority.
 *
 * Contract (checked by `plugins/ca/conformance.ts`):
 * - `sign` answers well within the agent's budget (the kernel waits at most 1 s in total); it must
 *   honour `signal` and must not retry for long. Errors are prefixed by the loader.
 * - Leaves: RSA issuers sign with PKCS#1 v1.5 + SHA-256 (never PSS), random serials of ≥128 bits,
 *   notBefore slightly in the past, notAfter ≤ now + min(ttlMs, maxTtlMs).
 * - `trustBundle` returns the same anchors `sign` reports.
 */
export interface CertificateAuthority extends PluginInstance {
  readonly name: string;
  /** Longest leaf lifetime this CA issues; the identity manager clamps requests to it. */
  readonly maxTtlMs: number;
  sign(request: SignRequest, signal: AbortSignal): Promise<SignedCertificate>;
  /** Current trust anchors (DER self-signed roots). */
  trustBundle(): Promise<Uint8Array[]>;
}

/** The CA refused the request itself (e.g. the CSR's signature does not verify). */
export class CsrRejectedError extends Error {
  override name = "CsrRejectedError";
}
