/**
 * The peer's SPIFFE ID and whether it may talk to us, as the kernel module decides it: the first
 * URI SAN of the verified peer certificate is the SPIFFE ID; with a non-empty `allowedSPIFFEIDs`
 * it must equal one entry or extend it at a `/` boundary (protocol doc §5).
 *
 * @module
 */
import type { TLSSocket } from "node:tls";
import { spiffeIdAllowed, spiffeIdProblem } from "../spiffe.ts";

/**
 * The URI entries of a Node `subjectaltname` string (`URI:spiffe://a/b, DNS:x`), in order.
 * Values with special characters arrive JSON-quoted (`URI:"…"`); they are unquoted.
 *
 * @example
 * ```ts
 * import { uriSans } from "./peer_identity.ts";
 * uriSans("DNS:web, URI:spiffe://acme.corp/web"); // ["spiffe://acme.corp/web"]
 * ```
 */
export function uriSans(subjectaltname: string | undefined): string[] {
  if (!subjectaltname) return [];
  const out: string[] = [];
  let i = 0;
  while (i < subjectaltname.length) {
    const colon = subjectaltname.indexOf(":", i);
    if (colon < 0) break;
    const type = subjectaltname.slice(i, colon).trim();
    let value: string;
    let next: number;
    if (subjectaltname[colon + 1] === '"') {
      // JSON string: find the closing quote that is not escaped.
      let j = colon + 2;
      while (j < subjectaltname.length && subjectaltname[j] !== '"') {
        j += subjectaltname[j] === "\\" ? 2 : 1;
      }
      try {
        value = JSON.parse(subjectaltname.slice(colon + 1, j + 1));
      } catch {
        value = subjectaltname.slice(colon + 2, j);
      }
      next = subjectaltname.indexOf(",", j);
    } else {
      next = subjectaltname.indexOf(", ", colon);
      value = subjectaltname.slice(colon + 1, next < 0 ? undefined : next);
    }
    if (type === "URI") out.push(value);
    if (next < 0) break;
    i = next + 1;
    while (subjectaltname[i] === " ") i++;
  }
  return out;
}

const NO_CERTIFICATE = "peer sent no certificate";

/** The peer as verified by one TLS handshake. */
export interface PeerIdentity {
  /** The first URI SAN when it is a valid SPIFFE ID. */
  spiffeId?: string;
  /** The chain verified against the trust bundle. */
  verified: boolean;
  /** Why verification failed (OpenSSL-style code, e.g. `UNABLE_TO_VERIFY_LEAF_SIGNATURE`). */
  verifyError?: string;
}

/**
 * Reads the peer identity of an established TLS socket. The leaf comes from
 * `getPeerX509Certificate()`: about half the cost of `getPeerCertificate()`, which also builds
 * the legacy object with fingerprints, key and issuer fields that are not needed here.
 */
export function peerIdentity(socket: TLSSocket): PeerIdentity {
  const cert = socket.getPeerX509Certificate();
  const out: PeerIdentity = { verified: socket.authorized };
  if (!cert) {
    out.verified = false;
    out.verifyError = NO_CERTIFICATE;
    return out;
  }
  const first = uriSans(cert.subjectAltName)[0];
  if (first !== undefined && spiffeIdProblem(first) === undefined) out.spiffeId = first;
  if (!socket.authorized) {
    const err = socket.authorizationError as unknown;
    out.verifyError = err instanceof Error ? err.message : String(err ?? "no peer certificate");
  }
  return out;
}

/**
 * Why `peer` may not talk to us under an mTLS policy, or `undefined` when it may.
 *
 * @example
 * ```ts
 * import { peerDenial } from "./peer_identity.ts";
 * peerDenial({ verified: true, spiffeId: "spiffe://td/ns/a" }, ["spiffe://td/ns"]); // undefined
 * ```
 */
export function peerDenial(peer: PeerIdentity, allowed: readonly string[]): string | undefined {
  if (peer.verifyError === NO_CERTIFICATE) return NO_CERTIFICATE;
  if (!peer.verified) return `peer certificate not trusted: ${peer.verifyError ?? "unknown"}`;
  if (peer.spiffeId === undefined) return "peer certificate has no SPIFFE ID (first URI SAN)";
  if (!spiffeIdAllowed(peer.spiffeId, allowed)) {
    return `peer ${peer.spiffeId} is not in allowedSPIFFEIDs [${allowed.join(", ")}]`;
  }
  return undefined;
}
