/**
 * What the outbound and inbound handlers share: their dependencies, the decision lookup and the
 * final relay with its bookkeeping.
 *
 * @module
 */
import type { Socket } from "node:net";
import type { Logger } from "@logtape/logtape";
import type { ProxyMetrics } from "./metrics.ts";
import { relay, type RelayEnd } from "./relay.ts";
import type { TlsContexts } from "./tls_contexts.ts";
import type {
  ConnectionListener,
  Outcome,
  PolicyFn,
  ProxyConnection,
  ProxyDecision,
} from "./types.ts";

/** Dependencies of a connection handler. */
export interface HandlerDeps {
  policy: PolicyFn;
  contexts: TlsContexts;
  metrics: ProxyMetrics;
  log: Logger;
  /** Limit for one TLS handshake. */
  handshakeTimeoutMs: number;
  /** Limit for one TCP connect. */
  connectTimeoutMs: number;
  /** How long an outbound connection waits for the application's first bytes (TLS detection). */
  firstBytesTimeoutMs: number;
  /** Every socket the proxy holds, so `stop()` can close what is left. */
  sockets: Set<Socket>;
  /** Told every connection's outcome (the daemon's trace). */
  onConnection?: ConnectionListener;
}

/** What {@linkcode settle} reports besides the outcome. */
export interface SettleDetail {
  peerSpiffeId?: string | undefined;
  reason?: string | undefined;
}

/** Counts a connection's outcome and tells `deps.onConnection`, whose errors are only logged. */
export function settle(
  deps: HandlerDeps,
  conn: ProxyConnection,
  outcome: Outcome,
  decision?: ProxyDecision,
  detail: SettleDetail = {},
): void {
  deps.metrics.count(conn.direction, outcome, policyLabel(decision));
  if (!deps.onConnection) return;
  try {
    deps.onConnection({
      connection: conn,
      outcome,
      ...(decision ? { decision } : {}),
      ...(detail.peerSpiffeId ? { peerSpiffeId: detail.peerSpiffeId } : {}),
      ...(detail.reason ? { reason: detail.reason } : {}),
    });
  } catch (e) {
    deps.log.error("Connection listener failed: {error}", { error: (e as Error).message });
  }
}

/** `policy` or `policy/egress`, the metrics label of a decision. */
export function policyLabel(d: ProxyDecision | undefined): string {
  if (!d?.policy) return "";
  return d.egress ? `${d.policy.id}/${d.egress.id}` : d.policy.id;
}

/** `1.2.3.4:80` or `[::1]:80`. */
export function hostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Log fields naming a connection. */
export function connFields(c: ProxyConnection): Record<string, unknown> {
  const f: Record<string, unknown> = {
    direction: c.direction,
    source: hostPort(c.sourceIp, c.sourcePort),
    destination: hostPort(c.destinationIp, c.destinationPort),
  };
  if (c.process) Object.assign(f, c.process);
  return f;
}

/** Tracks `s` in `deps.sockets` until it closes. */
export function track(deps: HandlerDeps, s: Socket): void {
  deps.sockets.add(s);
  s.once("close", () => deps.sockets.delete(s));
}

/** Asks the policy callback; a throw becomes a logged `error` outcome and `undefined`. */
export async function decide(
  deps: HandlerDeps,
  conn: ProxyConnection,
): Promise<ProxyDecision | undefined> {
  try {
    return await deps.policy(conn);
  } catch (e) {
    settle(deps, conn, "error", undefined, { reason: (e as Error).message });
    deps.log.error("Cannot decide on a connection: {error}", {
      ...connFields(conn),
      error: (e as Error).message,
    });
    return undefined;
  }
}

/**
 * Relays `a` ↔ `b`, counting the outcome now and the bytes and active gauge as they go;
 * `aToBAhead`: bytes the caller already wrote from `a` to `b` (a peeked first chunk).
 */
export function startRelay(
  deps: HandlerDeps,
  conn: ProxyConnection,
  outcome: Outcome,
  decision: ProxyDecision | undefined,
  a: RelayEnd,
  b: RelayEnd,
  aToBAhead = 0,
  peerSpiffeId?: string,
): void {
  const { metrics, log } = deps;
  settle(deps, conn, outcome, decision, { peerSpiffeId });
  metrics.activeDelta(1);
  if (aToBAhead > 0) metrics.addBytes(conn.direction, aToBAhead);
  relay(a, b, {
    aToBAhead,
    onBytes: (n) => metrics.addBytes(conn.direction, n),
    onDone: (r) => {
      metrics.activeDelta(-1);
      log.debug("Connection closed", () => ({
        ...connFields(conn),
        outcome,
        sent: r.aToB,
        received: r.bToA,
        ...(r.error ? { error: r.error.message } : {}),
      }));
    },
  });
}
