/**
 * TLS settings of the proxy and a cache of TLS contexts per workload identity. The settings let a
 * host running camblet-driver talk to us: TLS 1.2 with its ECDHE-RSA suites (BearSSL, no TLS
 * 1.3) and ALPN `camblet`; between two proxies TLS 1.3 is negotiated.
 *
 * @module
 */
import tls from "node:tls";
import type { CertificateBundle, IdentitySource } from "./types.ts";

/** ALPN of a camblet-wrapped connection. */
export const ALPN_CAMBLET = "camblet";
/** ALPN when the application speaks TLS itself: after the handshake, bytes pass unwrapped. */
export const ALPN_PASSTHROUGH = "camblet/passthrough";

/**
 * TLS 1.3 suites, then TLS 1.2 ECDHE suites: camblet-driver's client offers only
 * ECDHE-RSA-{CHACHA20-POLY1305,AES128-GCM-SHA256,AES256-GCM-SHA384} (and RSA-AES128-CCM).
 */
export const TLS_CIPHERS = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-RSA-CHACHA20-POLY1305",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
].join(":");

const BASE = {
  minVersion: "TLSv1.2",
  maxVersion: "TLSv1.3",
  ciphers: TLS_CIPHERS,
} as const satisfies tls.SecureContextOptions;

/** Contexts kept per identity; the daemon's identities are few, this only bounds a leak. */
const MAX_CACHED = 1024;

/** What one identity's TLS endpoints are built from. */
export interface IdentityTls {
  /** For the client side (`tls.connect({ secureContext })`). */
  context: tls.SecureContext;
  /** The same, TLS 1.2 at most: for passthrough offers (Deno takes versions from the context). */
  context12: tls.SecureContext;
  /**
   * For the server side, as plain options: Deno's `tls.createServer({ secureContext })` loses
   * the client-certificate anchors and fails every handshake with "no suitable signature
   * algorithm" (Deno 2.9), while the same material as options works.
   */
  serverOptions: tls.SecureContextOptions;
}

/** TLS material per SPIFFE ID, rebuilt when the certificate or the trust bundle changes. */
export class TlsContexts {
  #identity: IdentitySource;
  #cache = new Map<string, { certPem: string; bundlePem: string; tls: IdentityTls }>();
  #anonymous: tls.SecureContext | undefined;
  #anonymous12: tls.SecureContext | undefined;

  constructor(identity: IdentitySource) {
    this.#identity = identity;
  }

  /**
   * The TLS material presenting `spiffeId`'s certificate and trusting its bundle. Throws when
   * the identity manager cannot supply it (the caller closes that connection only).
   */
  async forIdentity(spiffeId: string): Promise<IdentityTls> {
    let bundle: CertificateBundle;
    try {
      bundle = await this.#identity.certificateFor(spiffeId);
    } catch (e) {
      throw new Error(`Cannot get the certificate of ${spiffeId}: ${(e as Error).message}`, {
        cause: e,
      });
    }
    const hit = this.#cache.get(spiffeId);
    if (hit && hit.certPem === bundle.certPem && hit.bundlePem === bundle.bundlePem) return hit.tls;
    const serverOptions: tls.SecureContextOptions = {
      ...BASE,
      key: bundle.keyPem,
      cert: bundle.chainPem.trim()
        ? `${bundle.certPem.trim()}\n${bundle.chainPem}`
        : bundle.certPem,
      ca: bundle.bundlePem,
    };
    const entry = {
      context: tls.createSecureContext(serverOptions),
      context12: tls.createSecureContext({ ...serverOptions, maxVersion: "TLSv1.2" }),
      serverOptions,
    };
    this.#cache.delete(spiffeId);
    if (this.#cache.size >= MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(spiffeId, { certPem: bundle.certPem, bundlePem: bundle.bundlePem, tls: entry });
    return entry;
  }

  /** A client context without certificate or anchors (`mtls: DISABLE`, as the kernel does). */
  anonymous(tls12 = false): tls.SecureContext {
    if (tls12) {
      this.#anonymous12 ??= tls.createSecureContext({ ...BASE, maxVersion: "TLSv1.2" });
      return this.#anonymous12;
    }
    this.#anonymous ??= tls.createSecureContext({ ...BASE });
    return this.#anonymous;
  }

  /** Forgets every cached context (e.g. after a trust bundle change). */
  clear(): void {
    this.#cache.clear();
  }
}
