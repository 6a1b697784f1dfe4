/**
 * Outbound: an application's connection, redirected to the agent by the steering programs. The
 * handler finds where it was going and who dialled, asks the policy, and then either forwards
 * the bytes unchanged (no policy) or dials the destination over TLS with the workload's
 * certificate, verifies the peer, and relays.
 *
 * @module
 */
import type { Socket } from "node:net";
import { clientHandshake, DialError, dialTcp, guard } from "./dial.ts";
import {
  connFields,
  decide,
  type HandlerDeps,
  hostPort,
  policyLabel,
  settle,
  startRelay,
  track,
} from "./handler.ts";
import { peerDenial, peerIdentity } from "./peer_identity.ts";
import { ALPN_CAMBLET, ALPN_PASSTHROUGH } from "./tls_contexts.ts";
import type { ProxyConnection, ProxyDecision } from "./types.ts";
import { normalizeIp } from "../bpf/ip.ts";
import { socketFdDup } from "./sockopt.ts";
import {
  looksLikeTls,
  type Peeked,
  peekFirst,
  type SplitTransport,
  splitTransport,
} from "./passthrough.ts";
import type { RelayEnd } from "./relay.ts";

/** Where a redirected connection was going; `Steering` implements it. */
export interface OriginLookup {
  originalDestination(clientIp: string, clientPort: number):
    | { ip: string; port: number; pid: number; uid: number; gid: number }
    | undefined;
}

/** Dependencies of {@linkcode handleOutbound}. */
export interface OutboundDeps extends HandlerDeps {
  origin: OriginLookup;
}

/** Handles one accepted outbound connection (paused, as `pauseOnConnect` leaves it). */
export function handleOutbound(app: Socket, deps: OutboundDeps): void {
  guard(app);
  track(deps, app);
  app.setNoDelay(true);
  const srcIp = normalizeIp(app.remoteAddress ?? "");
  const srcPort = app.remotePort ?? 0;
  let orig;
  try {
    orig = deps.origin.originalDestination(srcIp, srcPort);
  } catch (e) {
    deps.log.error("Cannot look up the original destination: {error}", {
      source: hostPort(srcIp, srcPort),
      error: (e as Error).message,
    });
  }
  if (!orig) {
    deps.metrics.count("output", "unknown_origin");
    deps.log.warning("Refused a connection that was not redirected by the agent", {
      source: hostPort(srcIp, srcPort),
    });
    app.destroy();
    return;
  }
  const conn: ProxyConnection = {
    direction: "output",
    sourceIp: srcIp,
    sourcePort: srcPort,
    destinationIp: orig.ip,
    destinationPort: orig.port,
    process: { pid: orig.pid, uid: orig.uid, gid: orig.gid },
  };
  setUp(app, conn, deps).catch((e) => {
    // Only a bug gets here; the connection is dropped, the agent keeps going.
    settle(deps, conn, "error", undefined, { reason: String(e) });
    deps.log.error("Outbound connection failed: {error}", {
      ...connFields(conn),
      error: String(e),
    });
    app.destroy();
  });
}

async function setUp(app: Socket, conn: ProxyConnection, deps: OutboundDeps): Promise<void> {
  const gone = new AbortController();
  const onAppClose = () => gone.abort();
  app.once("close", onAppClose);
  try {
    const decision = await decide(deps, conn);
    if (!decision || app.destroyed) return void app.destroy();
    if (!decision.intercepted) return await plain(app, conn, deps, gone.signal);
    await wrapped(app, conn, decision, deps, gone.signal);
  } finally {
    app.off("close", onAppClose);
  }
}

async function plain(app: Socket, conn: ProxyConnection, deps: OutboundDeps, signal: AbortSignal) {
  let up: Socket;
  try {
    up = await dialTcp(
      { host: conn.destinationIp, port: conn.destinationPort },
      deps.connectTimeoutMs,
      signal,
    );
  } catch (e) {
    return connectFailed(app, conn, deps, undefined, e);
  }
  track(deps, up);
  startRelay(deps, conn, "plain", undefined, { stream: app, tcp: app }, { stream: up, tcp: up });
}

function connectFailed(
  app: Socket,
  conn: ProxyConnection,
  deps: HandlerDeps,
  decision: ProxyDecision | undefined,
  e: unknown,
): void {
  const handshake = e instanceof DialError && e.stage === "handshake";
  settle(deps, conn, handshake ? "handshake_failed" : "connect_failed", decision, {
    reason: (e as Error).message,
  });
  const fields = { ...connFields(conn), error: (e as Error).message, ...identities(decision) };
  if (handshake) deps.log.warning("TLS handshake with the peer failed: {error}", fields);
  else deps.log.info("Cannot reach the destination: {error}", fields);
  // Refused or unreachable: let the application see a reset, as a direct connect would.
  try {
    app.resetAndDestroy();
  } catch {
    app.destroy();
  }
}

function identities(d: ProxyDecision | undefined, peer?: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (d?.spiffeId) out.spiffeId = d.spiffeId;
  if (peer) out.peerSpiffeId = peer;
  if (d?.policy) out.policy = policyLabel(d);
  return out;
}

async function wrapped(
  app: Socket,
  conn: ProxyConnection,
  decision: ProxyDecision,
  deps: OutboundDeps,
  signal: AbortSignal,
): Promise<void> {
  let material;
  try {
    if (decision.mtls && !decision.spiffeId) {
      throw new Error("the mTLS decision names no SPIFFE ID to present");
    }
    material = decision.mtls ? await deps.contexts.forIdentity(decision.spiffeId!) : undefined;
  } catch (e) {
    settle(deps, conn, "error", decision, { reason: (e as Error).message });
    deps.log.error("Cannot get the workload certificate: {error}", {
      ...connFields(conn),
      ...identities(decision),
      error: (e as Error).message,
    });
    return void app.destroy();
  }
  // The application's first bytes, read while connecting: a TLS ClientHello means it speaks
  // TLS itself, so passthrough is offered (as the kernel module does). Server-first protocols
  // send nothing: the peek gives up after firstBytesTimeoutMs.
  const peeking = decision.passthrough
    ? Promise.resolve<Peeked>({ ended: false })
    : peekFirst(app, deps.firstBytesTimeoutMs);
  let tcp: Socket | undefined;
  let t;
  let fd: number | undefined;
  let split: SplitTransport | undefined;
  let peek: Peeked;
  try {
    tcp = await dialTcp(
      { host: conn.destinationIp, port: conn.destinationPort },
      deps.connectTimeoutMs,
      signal,
    );
    track(deps, tcp);
    peek = await peeking;
    const offerPassthrough = decision.passthrough === true ||
      (peek.data !== undefined && looksLikeTls(peek.data));
    if (offerPassthrough) split = splitTransport(tcp);
    else fd = socketFdDup(tcp); // before TLS takes the handle over
    t = await clientHandshake(split ? split.transport : tcp, {
      secureContext: offerPassthrough
        ? material?.context12 ?? deps.contexts.anonymous(true)
        : material?.context ?? deps.contexts.anonymous(),
      alpn: offerPassthrough ? [ALPN_PASSTHROUGH, ALPN_CAMBLET] : [ALPN_CAMBLET],
      timeoutMs: deps.handshakeTimeoutMs,
      signal,
    });
  } catch (e) {
    tcp?.destroy();
    return connectFailed(app, conn, deps, decision, e);
  }
  track(deps, t);
  const peer = peerIdentity(t);
  if (decision.mtls) {
    const denial = peerDenial(peer, decision.allowedSPIFFEIDs);
    if (denial) {
      settle(deps, conn, "denied", decision, { peerSpiffeId: peer.spiffeId, reason: denial });
      deps.log.warning("Denied the peer: {reason}", {
        ...connFields(conn),
        ...identities(decision, peer.spiffeId),
        reason: denial,
      });
      t.destroy();
      tcp.destroy();
      return void app.destroy();
    }
  }
  const passthrough = split !== undefined && t.alpnProtocol === ALPN_PASSTHROUGH;
  deps.log.debug("Connection protected", () => ({
    ...connFields(conn),
    ...identities(decision, peer.spiffeId),
    protocol: t.getProtocol(),
    cipher: t.getCipher()?.name,
    alpn: t.alpnProtocol || "",
  }));
  const outcome = passthrough ? "passthrough" : decision.mtls ? "mtls" : "tls";
  let up: RelayEnd = { stream: t, tcp, fd };
  if (passthrough) {
    split!.detach(); // from here on the TCP socket carries the application's own TLS
    t.destroy();
    up = { stream: tcp, tcp };
  } else split?.keepTls();
  if (peek.data) up.stream.write(peek.data);
  if (peek.ended) up.stream.end();
  const ahead = peek.data?.length ?? 0;
  startRelay(deps, conn, outcome, decision, { stream: app, tcp: app }, up, ahead, peer.spiffeId);
}
