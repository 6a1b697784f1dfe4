/**
 * eBPF steering for the user-space data plane: loads the embedded `steer.bpf.c` object, attaches
 * its cgroup programs (connect4/6, getpeername4/6, sockops) at the cgroup v2 root and its
 * sk_lookup program to this process's network namespace, and exposes the maps as methods.
 *
 * - Outbound: a TCP connect to a protected destination (`setProtected`) by any process in this
 *   network namespace, other than the agent itself, is sent to the agent's outbound listener;
 *   {@linkcode Steering.originalDestination} then says where it was going and who dialled it.
 * - Inbound: SYNs to a protected local port (`setInboundPorts`) go to the agent's inbound
 *   listener (`setListener`); its accepted sockets report the original local address. The agent's
 *   onward leg (a connect from an explicitly bound source address) is let through.
 * - Exit: links close with the process, so traffic flows directly (fail-open). With
 *   `pinDir` (fail-closed) the links stay: protected destinations are refused while no agent serves.
 *
 * Needs root, Linux 5.14+ (SO_NETNS_COOKIE), cgroup v2 and libbpf.so.1.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { CapabilityError } from "../errors.ts";
import { type BpfMap, BpfObject, removePinnedLink } from "./bpf_object.ts";
import {
  bpf,
  closeFd,
  getpid,
  isBpffs,
  isCgroup2,
  libbpfVersion,
  netnsCookie,
  openFd,
} from "./libbpf.ts";
import { STEER_OBJECT_BASE64 } from "./steer_object.ts";
import {
  ADDR_PORT_SIZE,
  addrPort,
  CONFIG_SIZE,
  configBytes,
  ORIG_DST_SIZE,
  type OriginalDestination,
  readAddrPort,
  readOrigDst,
  STAT_NAMES,
  type StatName,
  u32,
  u64,
} from "./steer_layout.ts";

export type { OriginalDestination, StatName } from "./steer_layout.ts";

/** Where cgroup v2 is looked for when no `cgroupPath` is given (hybrid layout first). */
export const CGROUP2_CANDIDATES = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] as const;

/** The cgroup programs, attached at the cgroup v2 root. */
const CGROUP_PROGRAMS = [
  "camblet_sockops",
  "camblet_getpeername4",
  "camblet_getpeername6",
  "camblet_connect4",
  "camblet_connect6",
] as const;
const SK_LOOKUP = "camblet_sk_lookup";

/** Options for {@linkcode Steering.start}. */
export interface SteeringOptions {
  /** Port of the agent's outbound listener (on `outboundIp4` and `outboundIp6`). */
  outboundPort: number;
  /** IPv4 of the outbound listener (default `127.0.0.1`). */
  outboundIp4?: string;
  /** IPv6 of the outbound listener (default `::1`); `null`: real IPv6 is not redirected. */
  outboundIp6?: string | null;
  /** A cgroup v2 directory; programs apply to every process below it (default: the root). */
  cgroupPath?: string;
  /** Attach sk_lookup to this network namespace (default true). */
  inbound?: boolean;
  /**
   * Fail-closed: pin the links in this directory on a bpf filesystem (e.g.
   * `/sys/fs/bpf/camblet`) so they outlive the agent. Links left by an earlier run are replaced.
   */
  pinDir?: string;
  /** The process never redirected (default: this one). */
  agentPid?: number;
  /** A BPF object other than the embedded one (tests). */
  object?: Uint8Array;
}

/** One protected destination; no port = every port of the address. */
export interface ProtectedDestination {
  ip: string;
  port?: number;
}

function findCgroup2(path: string | undefined): string {
  if (path !== undefined) {
    if (!isCgroup2(path)) {
      throw new CapabilityError(
        `Cannot attach the eBPF steering to "${path}": not a cgroup v2 directory`,
      );
    }
    return path;
  }
  const found = CGROUP2_CANDIDATES.find((p) => isCgroup2(p));
  if (!found) {
    throw new CapabilityError(
      `Cannot find a cgroup v2 mount (tried ${CGROUP2_CANDIDATES.join(", ")}); ` +
        `mount one (mount -t cgroup2 none /sys/fs/cgroup/unified) or pass its path`,
    );
  }
  return found;
}

/** The loaded and attached steering programs of one agent. Close with {@linkcode close}. */
export class Steering {
  readonly cgroupPath: string;
  readonly netnsCookie: bigint;
  readonly failClosed: boolean;
  #obj: BpfObject;
  #pinDir: string | undefined;
  #maps: Record<
    "config" | "protected" | "origByClient" | "inboundPorts" | "listeners" | "stats",
    BpfMap
  >;
  #ncpu: number;
  #closed = false;

  private constructor(obj: BpfObject, cgroupPath: string, cookie: bigint, pinDir?: string) {
    this.#obj = obj;
    this.cgroupPath = cgroupPath;
    this.netnsCookie = cookie;
    this.#pinDir = pinDir;
    this.failClosed = pinDir !== undefined;
    this.#ncpu = bpf().libbpf_num_possible_cpus();
    this.#maps = {
      config: obj.map("config", 4, CONFIG_SIZE),
      protected: obj.map("protected", ADDR_PORT_SIZE, 1),
      origByClient: obj.map("orig_by_client", ADDR_PORT_SIZE, ORIG_DST_SIZE),
      inboundPorts: obj.map("inbound_ports", 4, 1),
      listeners: obj.map("listeners", 4, 8),
      stats: obj.map("stats", 4, 8 * this.#ncpu),
    };
  }

  /**
   * Loads, configures and attaches the programs. Throws {@linkcode CapabilityError} when the
   * host lacks something (libbpf, cgroup v2, bpffs for `pinDir`), else the libbpf error.
   */
  static start(options: SteeringOptions): Steering {
    const cgroupPath = findCgroup2(options.cgroupPath);
    if (options.pinDir !== undefined) {
      const parent = options.pinDir.replace(/\/[^/]+\/?$/, "") || "/";
      if (!isBpffs(parent) && !isBpffs(options.pinDir)) {
        throw new CapabilityError(
          `Cannot pin the steering links in "${options.pinDir}": not on a bpf filesystem ` +
            `(mount -t bpf bpf /sys/fs/bpf)`,
        );
      }
    }
    const cookie = netnsCookie();
    const image = options.object ?? Buffer.from(STEER_OBJECT_BASE64, "base64");
    const obj = BpfObject.load(image, `eBPF steering object (${libbpfVersion()})`);
    const steering = new Steering(obj, cgroupPath, cookie, options.pinDir);
    try {
      steering.#maps.config.update(
        u32(0),
        configBytes({
          netnsCookie: cookie,
          agentTgid: options.agentPid ?? getpid(),
          failClosed: options.pinDir !== undefined,
          proxyIp4: options.outboundIp4 ?? "127.0.0.1",
          proxyIp6: options.outboundIp6 === null ? undefined : options.outboundIp6 ?? "::1",
          proxyPort: options.outboundPort,
        }),
      );
      steering.#attach(cgroupPath, options.inbound ?? true);
    } catch (e) {
      steering.close();
      throw e;
    }
    return steering;
  }

  #attach(cgroupPath: string, inbound: boolean): void {
    const cg = openFd(cgroupPath, true);
    try {
      for (const p of CGROUP_PROGRAMS) this.#obj.attachCgroup(p, cg);
    } finally {
      closeFd(cg);
    }
    if (inbound) {
      const ns = openFd("/proc/thread-self/ns/net");
      try {
        this.#obj.attachNetns(SK_LOOKUP, ns);
      } finally {
        closeFd(ns);
      }
    }
    if (this.#pinDir !== undefined) {
      Deno.mkdirSync(this.#pinDir, { recursive: true });
      for (const p of this.#obj.attached) {
        removePinnedLink(`${this.#pinDir}/${p}`); // an earlier run's: ours is attached already
        this.#obj.pin(p, `${this.#pinDir}/${p}`);
      }
    }
  }

  /** Names of the attached programs. */
  get attached(): string[] {
    return this.#obj.attached;
  }

  /** Replaces the protected destinations (the service table) with `destinations`. */
  setProtected(destinations: Iterable<ProtectedDestination>): void {
    const want = new Map<string, Uint8Array<ArrayBuffer>>();
    for (const d of destinations) {
      const key = addrPort(d.ip, d.port ?? 0);
      want.set(key.join(","), key);
    }
    const m = this.#maps.protected;
    for (const key of m.keys()) {
      if (!want.delete(key.join(","))) m.delete(key);
    }
    for (const key of want.values()) m.update(key, new Uint8Array([1]));
  }

  /** The protected destinations (port 0 = every port). */
  protectedDestinations(): { ip: string; port: number }[] {
    return this.#maps.protected.keys().map(readAddrPort);
  }

  /** Replaces the local ports whose inbound connections go to the agent's listener. */
  setInboundPorts(ports: Iterable<number>): void {
    const want = new Set<number>();
    for (const p of ports) {
      if (!Number.isInteger(p) || p < 1 || p > 65535) {
        throw new RangeError(`Cannot steer inbound port ${p}: not in 1..65535`);
      }
      want.add(p);
    }
    const m = this.#maps.inboundPorts;
    for (const key of m.keys()) {
      const port = new DataView(key.buffer).getUint32(0, true);
      if (!want.delete(port)) m.delete(key);
    }
    for (const p of want) m.update(u32(p), new Uint8Array([1]));
  }

  /**
   * Registers the agent's listening socket `fd` (from `findListenerFd`) for inbound IPv4 (`4`)
   * or IPv6 (`6`) connections. The kernel drops it from the map when the socket closes.
   */
  setListener(family: 4 | 6, fd: number): void {
    this.#maps.listeners.update(u32(family === 4 ? 0 : 1), u64(BigInt(fd)));
  }

  /** Unregisters the inbound listener of `family`. */
  clearListener(family: 4 | 6): void {
    this.#maps.listeners.delete(u32(family === 4 ? 0 : 1));
  }

  /**
   * Where the redirected connection accepted from `clientIp:clientPort` (the accepted socket's
   * remote address) was going, and who dialled it; `undefined` when it was not redirected. The
   * record is consumed: the client port may be reused later.
   */
  originalDestination(clientIp: string, clientPort: number): OriginalDestination | undefined {
    const key = addrPort(clientIp, clientPort);
    const v = this.#maps.origByClient.lookup(key);
    if (!v) return undefined;
    this.#maps.origByClient.delete(key);
    return readOrigDst(v);
  }

  /** Counters of the BPF programs, summed over CPUs. */
  stats(): Record<StatName, bigint> {
    const out = {} as Record<StatName, bigint>;
    STAT_NAMES.forEach((name, i) => {
      const v = this.#maps.stats.lookup(u32(i));
      let sum = 0n;
      if (v) {
        const dv = new DataView(v.buffer);
        for (let c = 0; c < this.#ncpu; c++) sum += dv.getBigUint64(c * 8, true);
      }
      out[name] = sum;
    });
    return out;
  }

  /**
   * Detaches and unloads. Fail-closed steering keeps its pinned links unless `unpin` is true
   * (an orderly uninstall); they then refuse protected destinations until an agent serves again.
   */
  close(options: { unpin?: boolean } = {}): void {
    if (this.#closed) return;
    this.#closed = true;
    const keep = this.#pinDir !== undefined && !options.unpin;
    this.#obj.close(keep);
    if (this.#pinDir !== undefined && !keep) {
      try {
        Deno.removeSync(this.#pinDir);
      } catch { /* not empty or already gone: leave it */ }
    }
  }

  /** {@linkcode close} for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
