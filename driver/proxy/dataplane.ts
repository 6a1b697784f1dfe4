/**
 * The user-space data plane as one unit: the outbound and inbound listeners, the eBPF steering
 * that feeds them, the TLS contexts and the metrics. This is what the daemon starts when the
 * kernel module is absent (`--driver proxy`):
 *
 * ```ts ignore
 * const dp = await startProxyDataPlane({ policy, identity });
 * dp.setProtectedDestinations([{ ip: "10.0.0.5", port: 443 }]);  // the service table
 * dp.setInboundPorts([8000]);                                     // ports inbound policies protect
 * await dp.stop();                                                // detach, close, drain
 * ```
 *
 * When the agent stops, the programs detach and traffic flows directly, unprotected (fail-open);
 * with `steering.pinDir` they stay and protected destinations are refused until an agent serves
 * again (fail-closed).
 *
 * @module
 */
import net from "node:net";
import { getLogger, type Logger } from "@logtape/logtape";
import {
  type ProtectedDestination,
  type StatName,
  Steering,
  type SteeringOptions,
} from "../bpf/steering.ts";
import type { HandlerDeps } from "./handler.ts";
import { handleInbound } from "./inbound.ts";
import { type MetricsSnapshot, ProxyMetrics } from "./metrics.ts";
import { handleOutbound, type OriginLookup } from "./outbound.ts";
import { findListenerFd } from "./sockopt.ts";
import { TlsContexts } from "./tls_contexts.ts";
import type { ConnectionListener, IdentitySource, PolicyFn } from "./types.ts";

/** Options of {@linkcode startProxyDataPlane}. */
export interface ProxyDataPlaneOptions {
  /** Decides per connection; the daemon wraps the policy matcher and attestation. */
  policy: PolicyFn;
  /** Supplies workload certificates; the daemon passes the identity manager. */
  identity: IdentitySource;
  /** Outbound listener port (default 15001; 0 = any free port). */
  outboundPort?: number;
  /** Inbound listener port (default 15006; 0 = any free port). */
  inboundPort?: number;
  /** IPv4 loopback the listeners bind (default 127.0.0.1). */
  listenIp4?: string;
  /** IPv6 loopback the listeners bind (default ::1); `null`: IPv4 only. */
  listenIp6?: string | null;
  /** Steering options, or `false` for listeners only (then `origin` must be given). */
  steering?: Omit<SteeringOptions, "outboundPort" | "outboundIp4" | "outboundIp6"> | false;
  /** Original-destination lookup when `steering` is false. */
  origin?: OriginLookup;
  /** Limit for one TLS handshake (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Limit for one TCP connect (default 10 s). */
  connectTimeoutMs?: number;
  /**
   * How long an outbound connection waits for the application's first bytes to see whether it
   * speaks TLS (passthrough), in parallel with the connect to the peer (default 20 ms). Only
   * server-first protocols ever wait this long.
   */
  firstBytesTimeoutMs?: number;
  /** Logger (default `camblet.dataplane.proxy`). */
  log?: Logger;
  /** Told every connection's outcome, with the policy decision and peer identity (trace). */
  onConnection?: ConnectionListener;
}

/** A running proxy data plane. */
export interface ProxyDataPlane {
  /** The listeners, as `ip:port`. */
  readonly outbound: readonly string[];
  readonly inbound: readonly string[];
  readonly outboundPort: number;
  readonly inboundPort: number;
  /** The steering, when enabled. */
  readonly steering: Steering | undefined;
  /** Replaces the protected destinations (the service table; no port = every port). */
  setProtectedDestinations(destinations: Iterable<ProtectedDestination>): void;
  /** Replaces the local ports whose inbound connections are proxied. */
  setInboundPorts(ports: Iterable<number>): void;
  /** Connection counters. */
  metrics(): MetricsSnapshot;
  /** The counters in Prometheus text format. */
  prometheus(): string;
  /** The BPF programs' counters. */
  steeringStats(): Record<StatName, bigint> | undefined;
  /** Forgets cached TLS contexts (e.g. after a trust bundle change). */
  clearTlsContexts(): void;
  /**
   * Detaches the steering (new connections go direct, or are refused when fail-closed), closes
   * the listeners, lets open connections run for `graceMs` (default 0), then closes the rest.
   */
  stop(options?: { graceMs?: number }): Promise<void>;
}

function listen(host: string, port: number, onConn: (s: net.Socket) => void, log: Logger) {
  return new Promise<net.Server>((resolve, reject) => {
    const server = net.createServer(
      { allowHalfOpen: true, pauseOnConnect: true, noDelay: true },
      onConn,
    );
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      server.on(
        "error",
        (e) => log.error("Listener error on {host}: {error}", { host, port, error: e.message }),
      );
      resolve(server);
    });
  });
}

function addrOf(server: net.Server): { host: string; port: number; text: string } {
  const a = server.address() as net.AddressInfo;
  return {
    host: a.address,
    port: a.port,
    text: a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`,
  };
}

function closeServer(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * Starts listeners and steering. Throws `CapabilityError` when the host cannot steer (no libbpf,
 * no cgroup v2, not root); everything already started is stopped again.
 */
export async function startProxyDataPlane(options: ProxyDataPlaneOptions): Promise<ProxyDataPlane> {
  const log = options.log ?? getLogger(["camblet", "dataplane", "proxy"]);
  const ip4 = options.listenIp4 ?? "127.0.0.1";
  let ip6 = options.listenIp6 === undefined ? "::1" : options.listenIp6;
  const metrics = new ProxyMetrics();
  const contexts = new TlsContexts(options.identity);
  const sockets = new Set<net.Socket>();
  const servers: net.Server[] = [];
  let steering: Steering | undefined;
  const origin: OriginLookup = {
    originalDestination: (ip, port) => (steering ?? options.origin)?.originalDestination(ip, port),
  };
  const deps: HandlerDeps = {
    policy: options.policy,
    contexts,
    metrics,
    log,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? 10_000,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    firstBytesTimeoutMs: options.firstBytesTimeoutMs ?? 20,
    sockets,
    ...(options.onConnection ? { onConnection: options.onConnection } : {}),
  };
  const out = (s: net.Socket) => handleOutbound(s, { ...deps, origin });
  const inb = (s: net.Socket) => handleInbound(s, deps);
  try {
    const o4 = await listen(ip4, options.outboundPort ?? 15001, out, log);
    servers.push(o4);
    const outboundPort = addrOf(o4).port;
    const i4 = await listen(ip4, options.inboundPort ?? 15006, inb, log);
    servers.push(i4);
    const inboundPort = addrOf(i4).port;
    const outbound = [addrOf(o4).text];
    const inbound = [addrOf(i4).text];
    if (ip6 !== null) {
      try {
        const o6 = await listen(ip6, outboundPort, out, log);
        servers.push(o6);
        const i6 = await listen(ip6, inboundPort, inb, log);
        servers.push(i6);
        outbound.push(addrOf(o6).text);
        inbound.push(addrOf(i6).text);
      } catch (e) {
        // Hosts without IPv6 (disabled, or no ::1): IPv4 and v4-mapped traffic still works.
        if (options.listenIp6 !== undefined) throw e;
        log.warning("No IPv6 listener, IPv6 destinations are not protected: {error}", {
          address: ip6,
          error: (e as Error).message,
        });
        ip6 = null;
      }
    }
    if (options.steering !== false) {
      steering = Steering.start({
        ...options.steering,
        outboundPort,
        outboundIp4: ip4,
        outboundIp6: ip6,
      });
      if (options.steering?.inbound !== false) {
        steering.setListener(4, findListenerFd(ip4, inboundPort));
        if (ip6 !== null) steering.setListener(6, findListenerFd(ip6, inboundPort));
      }
    } else if (!options.origin) {
      throw new TypeError("Cannot start the proxy data plane without steering or an origin lookup");
    }
    log.info("Proxy data plane started", {
      outbound: outbound.join(" "),
      inbound: inbound.join(" "),
      steering: steering ? steering.cgroupPath : "off",
      failClosed: steering?.failClosed ?? false,
    });
    let stopped: Promise<void> | undefined;
    return {
      outbound,
      inbound,
      outboundPort,
      inboundPort,
      steering,
      setProtectedDestinations: (d) => requireSteering(steering).setProtected(d),
      setInboundPorts: (p) => requireSteering(steering).setInboundPorts(p),
      metrics: () => metrics.snapshot(),
      prometheus: () => metrics.toPrometheus(),
      steeringStats: () => steering?.stats(),
      clearTlsContexts: () => contexts.clear(),
      stop: (o = {}) => stopped ??= stop(o.graceMs ?? 0),
    };
  } catch (e) {
    await stop(0);
    throw e;
  }

  async function stop(graceMs: number): Promise<void> {
    steering?.close();
    const closing = servers.map(closeServer);
    const deadline = Date.now() + graceMs;
    while (sockets.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(50, deadline - Date.now())));
    }
    const left = sockets.size;
    for (const s of sockets) s.destroy();
    await Promise.all(closing);
    log.info("Proxy data plane stopped", { closedConnections: left });
  }
}

function requireSteering(s: Steering | undefined): Steering {
  if (!s) throw new Error("Cannot change steering maps: the data plane runs without steering");
  return s;
}
