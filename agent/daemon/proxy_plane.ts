/**
 * The proxy data plane as the daemon runs it: eBPF steering plus our mTLS proxy
 * (driver/proxy), fed by the same policies, services, attestation and CA as the kernel module.
 * Per connection it attests the process (the dialling one outbound, the listening one inbound),
 * decides with the kernel's own matching rules (agent/policy/match.ts) and obtains the workload's
 * certificate through the identity manager before a byte is forwarded.
 *
 * Protected destinations are the service table (the module only evaluates outbound connections
 * to services); protected local ports are those whose listening process an inbound policy matches,
 * rescanned periodically and after every policy change.
 *
 * @module
 */
import type { KernelLog, LogMessage, TraceRequest } from "../../driver/codec.ts";
import type { KernelPayloads, TaskContext } from "../../driver/payloads.ts";
import type { ProtectedDestination } from "../../driver/bpf/steering.ts";
import { type ProxyDataPlane, startProxyDataPlane } from "../../driver/proxy/dataplane.ts";
import type {
  CertificateBundle,
  ConnectionEvent,
  Outcome,
  ProxyConnection,
  ProxyDecision,
} from "../../driver/proxy/types.ts";
import { taskContextFromProc } from "../../plugins/attestor/_lib/task_from_proc.ts";
import type { AgentConfig } from "../config/schema.ts";
import { parseDuration } from "../duration.ts";
import { logger } from "../log.ts";
import { matchConnection } from "../policy/match.ts";
import type { DataPlane, DataPlaneChoice } from "./data_plane.ts";
import { ListenerTable } from "./listeners.ts";
import type { PayloadOrigin } from "./payload_sync.ts";
import type { ProxyStatus } from "./status.ts";

const log = logger("dataplane", "proxy");

/** The identity manager's per-workload keys, as the proxy plane uses them. */
export interface WorkloadIdentities {
  /** Issues (or returns the cached) certificate for `spiffeId`, checked against `requester`. */
  prepare(
    spiffeId: string,
    requester: { task: TaskContext; labels: string[] },
  ): Promise<CertificateBundle>;
  certificateFor(spiffeId: string): CertificateBundle | Promise<CertificateBundle>;
  /** Drops an identity (stops renewing it). */
  forget?(spiffeId: string): boolean;
  stats?(): unknown;
}

/** Identities no connection used for this long are dropped rather than renewed forever. */
const IDLE_IDENTITY_MS = 60 * 60_000;

/** Options of {@linkcode openProxyPlane}. */
export interface ProxyPlaneOptions {
  choice: DataPlaneChoice;
  agent: AgentConfig;
  /** The policies and services in force. */
  payloads: () => KernelPayloads;
  /** Labels of a process (the attestation collectors; partial rather than late). */
  labelsFor: (task: TaskContext, signal: AbortSignal) => Promise<string[]>;
  identities: WorkloadIdentities;
  /**
   * Each connection's outcome as a trace line of the process it belongs to (the dialling one
   * outbound, the listening one inbound), in the module's `log` shape, for `camblet-agent trace`.
   */
  onLog?: (m: LogMessage) => void;
  /** Test seams. */
  steering?: false;
  listenIp6?: string | null;
}

/** Splits a service-table key (`ip` or `ip:port`, IPv6 fully expanded) into a destination. */
export function destinationOf(key: string): ProtectedDestination {
  const colons = key.split(":").length - 1;
  // IPv4 "a.b.c.d[:port]"; IPv6 has 7 colons, plus one with a port.
  if (colons === 0 || colons === 7) return { ip: key };
  const i = key.lastIndexOf(":");
  return { ip: key.slice(0, i), port: Number(key.slice(i + 1)) };
}

const TRACE: Record<Outcome, { message: string; level: string }> = {
  mtls: { message: "Connection protected (mTLS)", level: "info" },
  tls: { message: "Connection protected (TLS, no client certificate)", level: "info" },
  passthrough: { message: "Connection protected (passthrough)", level: "info" },
  plain: { message: "Connection not intercepted: no policy matched", level: "info" },
  denied: { message: "Peer denied", level: "warn" },
  handshake_failed: { message: "TLS handshake failed", level: "warn" },
  connect_failed: { message: "Cannot connect", level: "warn" },
  unknown_origin: { message: "Connection not redirected by the agent", level: "warn" },
  error: { message: "Connection failed", level: "error" },
};

function hostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** A proxy connection outcome as a `log` message of `task` (what `trace` streams). */
export function traceMessage(e: ConnectionEvent, task: TaskContext): LogMessage {
  const c = e.connection;
  const d = e.decision;
  const data: KernelLog = {
    ...TRACE[e.outcome],
    data_plane: "proxy",
    direction: c.direction,
    outcome: e.outcome,
    source: hostPort(c.sourceIp, c.sourcePort),
    destination: hostPort(c.destinationIp, c.destinationPort),
  };
  if (d?.spiffeId) data["spiffe_id"] = d.spiffeId;
  if (e.peerSpiffeId) data["peer_spiffe_id"] = e.peerSpiffeId;
  if (d?.policy) data["policy"] = d.egress ? `${d.policy.id}/${d.egress.id}` : d.policy.id;
  if (e.reason) data["reason"] = e.reason;
  return { command: "log", task, data, isMessage: true };
}

/** Starts the steering and the listeners (a {@linkcode CapabilityError} says what is missing). */
export async function openProxyPlane(o: ProxyPlaneOptions): Promise<DataPlane> {
  const plane = new ProxyPlane(o);
  await plane.start();
  return plane;
}

class ProxyPlane implements DataPlane {
  readonly choice: DataPlaneChoice;
  readonly ended: Promise<string> = new Promise(() => {});
  #o: ProxyPlaneOptions;
  #dp!: ProxyDataPlane;
  #listeners = new ListenerTable();
  /** Local port → owning pid, from the last scan. */
  #owners = new Map<number, number>();
  #inboundPorts: number[] = [];
  #protected = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #scanning: Promise<void> | undefined;
  #lastPayloads = "";
  /** SPIFFE ID → when a connection last needed it. */
  #used = new Map<string, number>();
  #budgetMs: number;
  /** The attested process of each connection under way, for its trace line. */
  #tasks = new WeakMap<ProxyConnection, TaskContext>();

  constructor(o: ProxyPlaneOptions) {
    this.choice = o.choice;
    this.#o = o;
    this.#budgetMs = parseDuration(o.agent.attestation.budget);
  }

  async start(): Promise<void> {
    const p = this.#o.agent.proxy;
    this.#dp = await startProxyDataPlane({
      outboundPort: p.outboundPort,
      inboundPort: p.inboundPort,
      ...(this.#o.listenIp6 !== undefined ? { listenIp6: this.#o.listenIp6 } : {}),
      steering: this.#o.steering === false ? false : {
        ...(p.failClosed ? { pinDir: p.pinDir } : {}),
        ...(p.cgroupPath ? { cgroupPath: p.cgroupPath } : {}),
      },
      policy: (conn) => this.#decide(conn),
      identity: { certificateFor: (id) => this.#o.identities.certificateFor(id) },
      ...(this.#o.onLog ? { onConnection: (e: ConnectionEvent) => this.#trace(e) } : {}),
    });
    log.info("Proxy data plane serving", {
      outbound: this.#dp.outbound.join(" "),
      inbound: this.#dp.inbound.join(" "),
      failClosed: p.failClosed,
    });
    const every = parseDuration(p.listenerScanInterval);
    this.#timer = setInterval(() => {
      void this.rescan();
      this.#forgetIdle();
    }, every);
  }

  #task(pid: number | undefined): TaskContext | undefined {
    if (pid === undefined || pid === Deno.pid) return undefined;
    return taskContextFromProc(pid);
  }

  async #labels(task: TaskContext | undefined): Promise<string[]> {
    if (!task) return [];
    return await this.#o.labelsFor(task, AbortSignal.timeout(this.#budgetMs));
  }

  async #decide(conn: ProxyConnection): Promise<ProxyDecision> {
    let pid = conn.process?.pid;
    if (conn.direction === "input") {
      pid = this.#owners.get(conn.destinationPort);
      if (pid === undefined) {
        await this.rescan();
        pid = this.#owners.get(conn.destinationPort);
      }
    }
    const task = this.#task(pid);
    if (task) this.#tasks.set(conn, task);
    if (conn.direction === "output" && !task) {
      // Steered because its destination is protected: never let it out unattested.
      throw new Error(`Cannot attest the dialling process (pid ${pid ?? "unknown"})`);
    }
    const labels = await this.#labels(task);
    const r = matchConnection(this.#o.payloads(), {
      labels,
      direction: conn.direction,
      sourceIp: conn.sourceIp,
      sourcePort: conn.sourcePort,
      destinationIp: conn.destinationIp,
      destinationPort: conn.destinationPort,
    });
    if (r.intercepted && r.spiffeId && task) {
      // Issue (or reuse) before the handshake, with the same guard as the kernel's csr_sign.
      this.#used.set(r.spiffeId, Date.now());
      await this.#o.identities.prepare(r.spiffeId, { task, labels });
    }
    return r;
  }

  #trace(e: ConnectionEvent): void {
    // A connection whose process is unknown cannot match a trace filter (pid, uid, name).
    const task = this.#tasks.get(e.connection);
    if (task) this.#o.onLog?.(traceMessage(e, task));
  }

  #forgetIdle(): void {
    const before = Date.now() - IDLE_IDENTITY_MS;
    for (const [id, at] of this.#used) {
      if (at >= before) continue;
      this.#used.delete(id);
      if (this.#o.identities.forget?.(id)) log.info("Idle identity dropped", { spiffeId: id });
    }
  }

  /** Matches every listening process against the inbound policies; updates the steered ports. */
  rescan(): Promise<void> {
    this.#scanning ??= this.#scan().finally(() => this.#scanning = undefined);
    return this.#scanning;
  }

  async #scan(): Promise<void> {
    const p = this.#o.agent.proxy;
    const payloads = this.#o.payloads();
    const owners = new Map<number, number>();
    const ports = new Set<number>();
    for (const l of await this.#listeners.scan()) {
      if (l.pid === undefined || l.pid === Deno.pid) continue;
      if (l.port === p.outboundPort || l.port === p.inboundPort) continue;
      owners.set(l.port, l.pid);
      try {
        const labels = await this.#labels(this.#task(l.pid));
        const r = matchConnection(payloads, {
          labels,
          direction: "input",
          destinationPort: l.port,
        });
        if (r.intercepted) ports.add(l.port);
      } catch (e) {
        log.warn("Cannot attest listening process", {
          pid: l.pid,
          port: l.port,
          error: (e as Error).message,
        });
      }
    }
    this.#owners = owners;
    const next = [...ports].sort((a, b) => a - b);
    if (next.join() !== this.#inboundPorts.join()) {
      log.info("Protected local ports", { ports: next.join(",") || "(none)" });
      this.#inboundPorts = next;
      this.#dp.setInboundPorts(next);
    }
  }

  #apply(p: KernelPayloads): void {
    const dests = Object.keys(p.load_sd_info).map(destinationOf);
    this.#protected = dests.length;
    this.#dp.setProtectedDestinations(dests);
  }

  async pushInitial(p: KernelPayloads, _origin: PayloadOrigin): Promise<void> {
    this.#lastPayloads = JSON.stringify(p);
    this.#apply(p);
    await this.rescan();
  }

  async pushChanged(p: KernelPayloads, _origin: PayloadOrigin): Promise<string[]> {
    const before = JSON.parse(this.#lastPayloads) as KernelPayloads;
    const changed = (["load_config", "load_sd_info", "load_policies"] as const).filter((k) =>
      JSON.stringify(before[k]) !== JSON.stringify(p[k])
    );
    if (changed.length === 0) return [];
    this.#lastPayloads = JSON.stringify(p);
    this.#apply(p);
    await this.rescan();
    return changed;
  }

  /** The proxy has no kernel filter to set: the trace hub filters by task on its side. */
  pushTrace(_request: TraceRequest): Promise<void> {
    return Promise.resolve();
  }

  status(): Promise<{ proxy: ProxyStatus }> {
    const m = this.#dp.metrics();
    const connections: Record<string, number> = {};
    for (const c of m.connections) {
      const k = `${c.direction}/${c.outcome}`;
      connections[k] = (connections[k] ?? 0) + c.count;
    }
    const steering = this.#dp.steeringStats();
    const s: ProxyStatus = {
      outbound: [...this.#dp.outbound],
      inbound: [...this.#dp.inbound],
      failClosed: this.#dp.steering?.failClosed ?? false,
      protectedDestinations: this.#protected,
      protectedPorts: [...this.#inboundPorts],
      activeConnections: m.active,
      connections,
    };
    if (steering) {
      s.steering = Object.fromEntries(
        Object.entries(steering).map(([k, v]) => [k, Number(v)]),
      );
    }
    const ids = this.#o.identities.stats?.();
    if (ids !== undefined) s.identities = ids;
    return Promise.resolve({ proxy: s });
  }

  metrics(): Promise<{ text: string }> {
    return Promise.resolve({ text: this.#dp.prometheus() });
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#scanning;
    await this.#dp?.stop({ graceMs: 0 });
  }
}
