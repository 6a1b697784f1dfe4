/**
 * The user-space data plane (no kernel module): eBPF-steered transparent mTLS proxy. The daemon
 * starts it with {@linkcode startProxyDataPlane}; see README.md beside this file.
 *
 * @module
 */
export {
  type ProxyDataPlane,
  type ProxyDataPlaneOptions,
  startProxyDataPlane,
} from "./dataplane.ts";
export type { ConnectionCount, MetricsSnapshot } from "./metrics.ts";
export type { OriginLookup } from "./outbound.ts";
export { ALPN_CAMBLET, ALPN_PASSTHROUGH, TLS_CIPHERS } from "./tls_contexts.ts";
export type {
  CertificateBundle,
  ConnectionEvent,
  ConnectionListener,
  IdentitySource,
  Outcome,
  PolicyFn,
  ProxyConnection,
  ProxyDecision,
} from "./types.ts";
