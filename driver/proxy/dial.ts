/**
 * Opening the proxy's own connections: plain TCP (to a peer or to the local application) and the
 * client side of a TLS handshake on it. Every socket gets TCP_NODELAY before its first byte, and
 * `allowHalfOpen` so a FIN from one side can be relayed as a FIN.
 *
 * @module
 */
import net from "node:net";
import tls from "node:tls";
import type { Duplex } from "node:stream";

/**
 * Adds a permanent no-op "error" listener: an "error" event without listeners would throw out of
 * the event loop and stop the agent. Real handling is done by the code that owns the socket.
 */
export function guard<T extends net.Socket>(s: T): T {
  s.on("error", ignore);
  return s;
}

function ignore(): void {}

/** Where to dial. */
export interface DialTarget {
  host: string;
  port: number;
  /**
   * Explicit source address. The steering programs let an agent connect from an explicitly
   * bound source through to a protected local port (the onward leg to the application).
   */
  localAddress?: string;
}

/** A dial or handshake step that failed; `stage` says which. */
export class DialError extends Error {
  override name = "DialError";
  readonly stage: "connect" | "handshake";
  readonly code: string | undefined;
  constructor(stage: "connect" | "handshake", message: string, options?: ErrorOptions) {
    super(message, options);
    this.stage = stage;
    const code = (options?.cause as { code?: unknown } | undefined)?.code;
    this.code = typeof code === "string" ? code : undefined;
  }
}

/** Connects over TCP; rejects with {@linkcode DialError} (`connect`) on error or timeout. */
export function dialTcp(
  target: DialTarget,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const opts: net.NetConnectOpts = {
      host: target.host,
      port: target.port,
      noDelay: true,
      allowHalfOpen: true,
    };
    if (target.localAddress !== undefined) opts.localAddress = target.localAddress;
    const s = guard(net.connect(opts));
    const where = `${target.host.includes(":") ? `[${target.host}]` : target.host}:${target.port}`;
    const fail = (why: string, cause?: unknown) => {
      cleanup();
      s.destroy();
      reject(new DialError("connect", `Cannot connect to ${where}: ${why}`, { cause }));
    };
    const onError = (e: Error) => fail(e.message, e);
    const onAbort = () => fail("the client went away");
    const timer = setTimeout(() => fail(`no answer in ${timeoutMs} ms`), timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      s.off("error", onError);
      signal?.removeEventListener("abort", onAbort);
    };
    s.once("error", onError);
    signal?.addEventListener("abort", onAbort, { once: true });
    s.once("connect", () => {
      cleanup();
      s.setNoDelay(true);
      resolve(s);
    });
  });
}

/**
 * Deno's client builds the peer's detailed certificate object (`getPeerCertificate(true)`: the
 * leaf and every issuer, parsed and converted, anchors included) for `checkServerIdentity` after
 * every verified handshake, ~0.1–0.2 ms of CPU. Ours ignores it (peers are named by SPIFFE ID,
 * checked by the caller), so until `secureConnect` this socket answers a detailed request with an
 * empty object. Trust is unaffected: `authorized` comes from the TLS engine's own verification
 * against the bundle, never from this object.
 */
function skipDetailedCertificate(t: tls.TLSSocket): void {
  const proto = Object.getPrototypeOf(t) as tls.TLSSocket;
  Object.defineProperty(t, "getPeerCertificate", {
    configurable: true,
    writable: true,
    value: (detailed?: boolean) =>
      detailed === true ? {} : proto.getPeerCertificate.call(t, detailed as false),
  });
  const restore = () => delete (t as { getPeerCertificate?: unknown }).getPeerCertificate;
  t.once("secureConnect", restore);
  t.once("close", restore);
}

/** Options of {@linkcode clientHandshake}. */
export interface ClientHandshakeOptions {
  secureContext: tls.SecureContext;
  alpn: string[];
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * Runs the client side of a TLS handshake on a connected `tcp` (a socket, or the transport of
 * passthrough.ts). The peer certificate is NOT
 * judged here (`rejectUnauthorized: false`, no host name check: peers are named by SPIFFE ID,
 * not DNS); the caller checks `authorized` and the SPIFFE ID before sending any byte.
 */
export function clientHandshake(
  tcp: Duplex,
  o: ClientHandshakeOptions,
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const t = guard(tls.connect({
      socket: tcp as net.Socket, // typed as Socket; any Duplex works
      secureContext: o.secureContext,
      ALPNProtocols: o.alpn,
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    }));
    skipDetailedCertificate(t);
    const fail = (why: string, cause?: unknown) => {
      cleanup();
      t.destroy();
      tcp.destroy();
      reject(new DialError("handshake", `TLS handshake failed: ${why}`, { cause }));
    };
    const onError = (e: Error) => fail(e.message, e);
    const onClose = () => fail("connection closed by the peer");
    const onAbort = () => fail("the client went away");
    const timer = setTimeout(() => fail(`not done in ${o.timeoutMs} ms`), o.timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      t.off("error", onError);
      t.off("close", onClose);
      o.signal?.removeEventListener("abort", onAbort);
    };
    t.once("error", onError);
    t.once("close", onClose);
    o.signal?.addEventListener("abort", onAbort, { once: true });
    t.once("secureConnect", () => {
      cleanup();
      resolve(t);
    });
  });
}
