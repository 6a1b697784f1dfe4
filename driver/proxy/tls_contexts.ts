/**
 * TLS settings of the proxy and a cache of TLS contexts per workload identity. The settings let a
 * host running camblet-driver talk to us: TLS 1.2 with its ECDHE-RSA suites (BearSSL, no TLS
 * 1.3) and ALPN `camblet`; between two proxies TLS 1.3 is negotiated.
 *
 * @module
 */
import type { Socket } from "node:net";
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
  /**
   * The shared server side for one combination of settings (see {@linkcode SharedTlsServer}),
   * made on first use and kept as long as this material is current.
   */
  server(settings: ServerSettings): SharedTlsServer;
}

/** What varies between the server sides of one identity. */
export interface ServerSettings {
  /** Request a client certificate (never rejects by itself: every refusal is ours). */
  requestCert: boolean;
  /** ALPN protocols to answer with, in preference order; `undefined`: no ALPN answer. */
  alpn: readonly string[] | undefined;
  /** `handshakeTimeout` of the TLS socket. */
  handshakeTimeoutMs: number;
}

/** The outcome callbacks of one server-side handshake. */
export interface ServerHandshake {
  secure(t: tls.TLSSocket): void;
  error(e: Error): void;
}

/**
 * One `tls.Server` (never listening) that runs the server side of many handshakes: accepted
 * sockets are handed to it with {@linkcode accept}. Building a `tls.Server` validates and parses
 * the key and certificates (for an ECDSA key Deno's `createPrivateKey` alone costs ~0.3 ms), so
 * one per connection was a large part of the per-connection CPU. Only a server reports
 * `authorized`/`authorizationError` for the client certificate, hence a server and not a bare
 * `TLSSocket`.
 *
 * The TLS socket a server makes is matched back to its connection through `TLSSocket._parent`
 * (the wrapped `net.Socket`, as in Node); a socket that cannot be matched is destroyed.
 */
export class SharedTlsServer {
  #server: tls.Server;
  #pending = new Map<Socket, ServerHandshake>();

  constructor(options: tls.TlsOptions) {
    this.#server = tls.createServer(options);
    this.#server.on("secureConnection", (t: tls.TLSSocket) => {
      const h = this.#take(t);
      if (h) h.secure(t);
      else t.destroy();
    });
    this.#server.on("tlsClientError", (e: Error, t: tls.TLSSocket | Socket) => {
      // After the handshake, errors belong to whoever holds the socket (the relay).
      const h = this.#take(t);
      if (!h) return;
      h.error(e);
      t.destroy();
    });
  }

  /** Connections handed over whose handshake has not ended yet. */
  get pending(): number {
    return this.#pending.size;
  }

  #take(t: tls.TLSSocket | Socket): ServerHandshake | undefined {
    const parent = (t as { _parent?: unknown })._parent ?? t;
    const h = this.#pending.get(parent as Socket);
    if (h) this.#pending.delete(parent as Socket);
    return h;
  }

  /**
   * Runs the server side of a handshake on `socket`; exactly one of `h.secure`/`h.error` is
   * called, unless `socket` closes first (the caller watches that and calls the returned
   * function to forget the connection).
   */
  accept(socket: Socket, h: ServerHandshake): () => void {
    this.#pending.set(socket, h);
    this.#server.emit("connection", socket);
    return () => this.#pending.delete(socket);
  }
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
    const servers = new Map<string, SharedTlsServer>();
    const entry: IdentityTls = {
      context: tls.createSecureContext(serverOptions),
      context12: tls.createSecureContext({ ...serverOptions, maxVersion: "TLSv1.2" }),
      serverOptions,
      server(o) {
        const key = `${o.requestCert ? 1 : 0}|${o.handshakeTimeoutMs}|${o.alpn?.join(",") ?? "-"}`;
        let s = servers.get(key);
        if (!s) {
          s = new SharedTlsServer({
            ...serverOptions,
            requestCert: o.requestCert,
            rejectUnauthorized: false,
            ...(o.alpn ? { ALPNProtocols: [...o.alpn] } : {}),
            handshakeTimeout: o.handshakeTimeoutMs,
          });
          servers.set(key, s);
        }
        return s;
      },
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
