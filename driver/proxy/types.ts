/**
 * The proxy data plane's contract with the daemon: what it asks (`policy`, `identity`) and what
 * it reports (metrics, logs). The decision shape is a subset of the policy matcher's
 * `MatchResult` (agent/policy/match.ts), so the daemon can return that result as is.
 *
 * @module
 */

/** One connection as the proxy sees it, before any byte is forwarded. */
export interface ProxyConnection {
  /** `output`: an application dialled out; `input`: a peer dialled an application here. */
  direction: "input" | "output";
  /** The connecting end: the application (output) or the remote peer (input). */
  sourceIp: string;
  sourcePort: number;
  /** The original destination: the remote service (output) or the local application (input). */
  destinationIp: string;
  destinationPort: number;
  /** Outbound only: the process that dialled, as the kernel saw it (sockops). */
  process?: { pid: number; uid: number; gid: number };
}

/**
 * What to do with a connection, as the kernel module would decide it. `MatchResult` from
 * agent/policy/match.ts satisfies this interface.
 */
export interface ProxyDecision {
  /** False: forward the bytes unchanged (no policy matched). */
  intercepted: boolean;
  /** False only with `connection.mtls: DISABLE`: TLS without client certificates. */
  mtls: boolean;
  /** The application already speaks TLS: offer ALPN `camblet/passthrough`. */
  passthrough?: boolean;
  /** The peer must have one of these SPIFFE IDs or extend one at a `/`; empty = any. */
  allowedSPIFFEIDs: readonly string[];
  /** The workload's SPIFFE ID: the certificate presented to the peer. */
  spiffeId?: string;
  /** For metrics and logs. */
  policy?: { id: string };
  egress?: { id: string };
}

/** A workload's certificate material, PEM. */
export interface CertificateBundle {
  /** The leaf certificate (URI SAN = the SPIFFE ID). */
  certPem: string;
  /** Its private key. */
  keyPem: string;
  /** Intermediates between the leaf and a trust anchor; may be empty. */
  chainPem: string;
  /** The trust anchors peers are verified against. */
  bundlePem: string;
}

/** The identity manager as the proxy uses it. */
export interface IdentitySource {
  /**
   * The current certificate for `spiffeId` (cached and rotated by the manager). The proxy calls
   * it for every intercepted connection and reuses TLS contexts while `certPem` is unchanged.
   */
  certificateFor(spiffeId: string): CertificateBundle | Promise<CertificateBundle>;
}

/** Decides what the proxy does with a connection. Errors close that connection only. */
export type PolicyFn = (conn: ProxyConnection) => ProxyDecision | Promise<ProxyDecision>;

/**
 * One connection's outcome, as the proxy settled it (the proxy's counterpart of the module's trace
 * lines): reported once per connection that got as far as a {@linkcode ProxyConnection}.
 */
export interface ConnectionEvent {
  connection: ProxyConnection;
  outcome: Outcome;
  /** The policy decision, when one was made. */
  decision?: ProxyDecision;
  /** The peer's SPIFFE ID from its certificate, when the handshake got that far. */
  peerSpiffeId?: string;
  /** Why it failed or was denied. */
  reason?: string;
}

/** Receives connection outcomes; must not throw or block (it runs on the connection's path). */
export type ConnectionListener = (event: ConnectionEvent) => void;

/** How one connection ended up (metrics label). */
export type Outcome =
  /** Mutual TLS with an authorised peer. */
  | "mtls"
  /** TLS with `mtls: DISABLE` (no client certificate, no peer verification). */
  | "tls"
  /** Camblet handshake, then the application's own TLS bytes unwrapped. */
  | "passthrough"
  /** No policy matched: bytes forwarded unchanged. */
  | "plain"
  /** The peer's SPIFFE ID is not in `allowedSPIFFEIDs`, or its certificate did not verify. */
  | "denied"
  /** The TLS handshake failed (protocol, timeout, reset). */
  | "handshake_failed"
  /** Could not connect to the original destination or the application. */
  | "connect_failed"
  /** An outbound connection without a steering record (not redirected by us). */
  | "unknown_origin"
  /** The policy or identity callback threw. */
  | "error";
