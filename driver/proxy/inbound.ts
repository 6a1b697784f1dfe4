/**
 * Inbound: a peer's connection to a protected local port, handed to the agent by sk_lookup, so
 * the accepted socket's local address is the original destination. The handler asks the policy,
 * then either forwards the bytes unchanged or terminates TLS with the workload's certificate
 * (requiring and verifying a client certificate under mTLS), and relays to the application over
 * an onward leg from an explicitly bound source, which the steering lets through.
 *
 * @module
 */
import type { Socket } from "node:net";
import tls from "node:tls";
import { dialTcp, guard } from "./dial.ts";
import {
  connFields,
  decide,
  type HandlerDeps,
  policyLabel,
  settle,
  startRelay,
  track,
} from "./handler.ts";
import { peerDenial, peerIdentity } from "./peer_identity.ts";
import { ALPN_CAMBLET, ALPN_PASSTHROUGH, type IdentityTls } from "./tls_contexts.ts";
import { clientHelloAlpn, peekFirst, type SplitTransport, splitTransport } from "./passthrough.ts";
import type { RelayEnd } from "./relay.ts";
import type { ProxyConnection, ProxyDecision } from "./types.ts";
import { normalizeIp } from "../bpf/ip.ts";
import { socketFdDup } from "./sockopt.ts";

/** Handles one accepted inbound connection (paused, as `pauseOnConnect` leaves it). */
export function handleInbound(peer: Socket, deps: HandlerDeps): void {
  guard(peer);
  track(deps, peer);
  peer.setNoDelay(true);
  const conn: ProxyConnection = {
    direction: "input",
    sourceIp: normalizeIp(peer.remoteAddress ?? ""),
    sourcePort: peer.remotePort ?? 0,
    destinationIp: normalizeIp(peer.localAddress ?? ""),
    destinationPort: peer.localPort ?? 0,
  };
  setUp(peer, conn, deps).catch((e) => {
    settle(deps, conn, "error", undefined, { reason: String(e) });
    deps.log.error("Inbound connection failed: {error}", { ...connFields(conn), error: String(e) });
    peer.destroy();
  });
}

async function setUp(peer: Socket, conn: ProxyConnection, deps: HandlerDeps): Promise<void> {
  const decision = await decide(deps, conn);
  if (!decision || peer.destroyed) return void peer.destroy();
  if (!decision.intercepted) {
    const app = await onward(conn, deps, decision);
    if (!app) return resetQuietly(peer);
    startRelay(deps, conn, "plain", undefined, { stream: peer, tcp: peer }, {
      stream: app,
      tcp: app,
    });
    return;
  }
  let ctx: IdentityTls;
  try {
    if (!decision.spiffeId) throw new Error("the decision names no SPIFFE ID to present");
    ctx = await deps.contexts.forIdentity(decision.spiffeId);
  } catch (e) {
    settle(deps, conn, "error", decision, { reason: (e as Error).message });
    deps.log.error("Cannot get the workload certificate: {error}", {
      ...connFields(conn),
      error: (e as Error).message,
    });
    return void peer.destroy();
  }
  await terminate(peer, conn, decision, ctx, deps);
}

/** The onward leg to the application at the original destination, from that same address. */
async function onward(
  conn: ProxyConnection,
  deps: HandlerDeps,
  decision: ProxyDecision,
): Promise<Socket | undefined> {
  try {
    const app = await dialTcp({
      host: conn.destinationIp,
      port: conn.destinationPort,
      localAddress: conn.destinationIp,
    }, deps.connectTimeoutMs);
    track(deps, app);
    return app;
  } catch (e) {
    settle(deps, conn, "connect_failed", decision, { reason: (e as Error).message });
    deps.log.info("Cannot reach the local application: {error}", {
      ...connFields(conn),
      error: (e as Error).message,
    });
    return undefined;
  }
}

/** The application refused: the client sees a reset, as it would without the agent. */
function resetQuietly(s: Socket): void {
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}

function fields(conn: ProxyConnection, d: ProxyDecision, peerId?: string): Record<string, unknown> {
  return {
    ...connFields(conn),
    spiffeId: d.spiffeId,
    ...(peerId ? { peerSpiffeId: peerId } : {}),
    policy: policyLabel(d),
  };
}

/**
 * The server side of the handshake. A `tls.Server` (never listening) does it, because only a
 * server reports `authorized`/`authorizationError` for the client certificate; it requests one
 * under mTLS but never rejects by itself, so every refusal is ours and logged. The server is
 * shared per identity and settings (tls_contexts.ts), except for passthrough.
 */
async function terminate(
  peer: Socket,
  conn: ProxyConnection,
  decision: ProxyDecision,
  ctx: IdentityTls,
  deps: HandlerDeps,
): Promise<void> {
  let settled = false;
  const fail = (e: Error) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    settle(deps, conn, "handshake_failed", decision, { reason: e.message });
    deps.log.warning("TLS handshake with the client failed: {error}", {
      ...fields(conn, decision),
      error: e.message,
    });
    peer.destroy();
  };
  const timer = setTimeout(
    () => fail(new Error(`not done in ${deps.handshakeTimeoutMs} ms`)),
    deps.handshakeTimeoutMs,
  );
  // The ClientHello says whether the client offers passthrough (its application speaks TLS).
  const hello = await peekFirst(
    peer,
    deps.handshakeTimeoutMs,
    (b) => clientHelloAlpn(b) !== undefined,
  );
  if (!hello.data || hello.ended) {
    return fail(new Error("connection closed before the ClientHello"));
  }
  const offered = clientHelloAlpn(hello.data) ?? [];
  const passthrough = offered.includes(ALPN_PASSTHROUGH);
  // A client offering ALPN but not camblet's (an ordinary TLS client) gets no ALPN answer
  // rather than a failed handshake, as with the kernel module.
  const alpn = passthrough
    ? [ALPN_PASSTHROUGH, ALPN_CAMBLET]
    : offered.length === 0 || offered.includes(ALPN_CAMBLET)
    ? [ALPN_CAMBLET]
    : undefined;
  peer.unshift(hello.data);
  const split = passthrough ? splitTransport(peer) : undefined;
  const fd = split ? undefined : socketFdDup(peer); // before TLS takes the handle over
  let forget: (() => void) | undefined;
  peer.once("close", () => {
    forget?.();
    fail(new Error("connection closed by the client"));
  });
  const secure = (t: tls.TLSSocket) => {
    if (settled) return void t.destroy();
    settled = true;
    clearTimeout(timer);
    guard(t);
    track(deps, t);
    void accepted(t, peer, fd, split, conn, decision, deps);
  };
  if (!split) {
    // The common case: a server shared by every connection with these settings.
    forget = ctx.server({
      requestCert: decision.mtls,
      alpn,
      handshakeTimeoutMs: deps.handshakeTimeoutMs,
    }).accept(peer, { secure, error: fail });
    return;
  }
  // Passthrough runs over the split transport, which a shared server could not match back to
  // its connection: a server of its own (rare: only applications that speak TLS themselves).
  const server = tls.createServer({
    ...ctx.serverOptions,
    // Passthrough needs TLS 1.2: no TLS 1.3 tickets after the handshake in the raw stream.
    maxVersion: "TLSv1.2",
    requestCert: decision.mtls,
    rejectUnauthorized: false,
    ...(alpn ? { ALPNProtocols: alpn } : {}),
    handshakeTimeout: deps.handshakeTimeoutMs,
  });
  server.once("tlsClientError", (e: Error) => fail(e));
  server.once("secureConnection", secure);
  server.emit("connection", split.transport);
}

async function accepted(
  t: tls.TLSSocket,
  peer: Socket,
  fd: number | undefined,
  split: SplitTransport | undefined,
  conn: ProxyConnection,
  decision: ProxyDecision,
  deps: HandlerDeps,
): Promise<void> {
  const id = peerIdentity(t);
  if (decision.mtls) {
    const denial = peerDenial(id, decision.allowedSPIFFEIDs);
    if (denial) {
      settle(deps, conn, "denied", decision, { peerSpiffeId: id.spiffeId, reason: denial });
      deps.log.warning("Denied the client: {reason}", {
        ...fields(conn, decision, id.spiffeId),
        reason: denial,
      });
      t.destroy();
      return void peer.destroy();
    }
  }
  deps.log.debug("Accepted a protected connection from {peerSpiffeId}", () => ({
    ...fields(conn, decision, id.spiffeId),
    peerSpiffeId: id.spiffeId ?? "(none)",
    protocol: t.getProtocol(),
    cipher: t.getCipher()?.name,
    alpn: t.alpnProtocol || "",
  }));
  t.pause();
  const app = await onward(conn, deps, decision);
  if (!app) {
    t.destroy();
    return resetQuietly(peer);
  }
  let down: RelayEnd = { stream: t, tcp: peer, fd };
  const passthrough = split !== undefined && t.alpnProtocol === ALPN_PASSTHROUGH;
  if (passthrough) {
    split!.detach(); // from here on the TCP socket carries the client application's own TLS
    t.destroy();
    down = { stream: peer, tcp: peer };
  } else split?.keepTls();
  const outcome = passthrough ? "passthrough" : decision.mtls ? "mtls" : "tls";
  startRelay(deps, conn, outcome, decision, down, { stream: app, tcp: app }, 0, id.spiffeId);
}
