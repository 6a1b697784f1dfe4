/**
 * What the kernel feeds its policy (protocol doc §3.2, driver:src/socket.c): the agent's augment
 * labels plus the labels the kernel adds for the connection, and for outbound connections the
 * service entry found in the `load_sd_info` table. Pure; used by {@linkcode matchConnection}.
 *
 * Kernel traits modelled on purpose (each is a note in the result, never silently "fixed"):
 * - IPs are printed as the kernel prints them: IPv4 dotted, IPv6 fully expanded lower-case
 *   (`%pI6`), an IPv4-mapped address on an IPv6 socket stays IPv6.
 * - Inbound `source:port` is printed from a network-order field: byte-swapped on the
 *   little-endian hosts the module runs on (x86_64, aarch64). Seen in the captures: client port
 *   37118 arrives as `source:port=65168`.
 * - The service lookup tries the bare IP, then `ip:port`, in a 256-bucket hash table, and compares
 *   only the looked-up length (`strncmp`), so an entry that merely starts with the looked-up text
 *   and shares its bucket is found too (driver:src/sd.c).
 *
 * @module
 */
import { ipKey } from "./address.ts";
import type { KernelPayloads, LoadSdInfo } from "../../driver/payloads.ts";

/** A connection as `explain` and tests describe it; ports are real port numbers. */
export interface ConnectionInput {
  /** The agent's augment labels, `name=value`. */
  labels: Iterable<string>;
  direction: "input" | "output";
  sourceIp?: string;
  sourcePort?: number;
  destinationIp?: string;
  destinationPort?: number;
}

/** The OPA input, as label key lists (only keys matter to the kernel). */
export interface KernelInput {
  labels: string[];
  /** Present only for outbound connections whose destination is in the service table. */
  remote?: { labels: string[] };
}

/** How the service table was consulted for an outbound connection. */
export interface ServiceLookup {
  /** Keys looked up, in order (`ip`, then `ip:port`). */
  tried: string[];
  /** The entry the kernel finds, if any. */
  key?: string;
  labels?: string[];
  /** The entry was found only because of the kernel's prefix compare (see module doc). */
  prefixMatch?: boolean;
}

/** The kernel's input for one connection, or why there is none. */
export interface BuiltInput {
  /** False: the kernel does not evaluate policies at all (outbound, no service entry). */
  evaluated: boolean;
  input: KernelInput;
  service?: ServiceLookup;
  /** Human notes on kernel traits and missing connection facts. */
  notes: string[];
}

/**
 * Formats an IP the way the kernel prints it (`%pI4` / `%pI6`; the same form as the service
 * table's keys, see address.ts). Accepts brackets and a zone (dropped: the kernel never prints
 * one). Throws `TypeError` naming the value if it is no IP.
 *
 * @example
 * ```ts
 * import { kernelIp } from "./match_input.ts";
 * kernelIp("::1"); // "0000:0000:0000:0000:0000:0000:0000:0001"
 * ```
 */
export function kernelIp(text: string): string {
  let s = text.trim();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const key = ipKey(s.replace(/%.*$/, ""));
  if (key === undefined) throw new TypeError(`Cannot read IP address "${text}": not IPv4 or IPv6`);
  return key;
}

/** Swaps the two bytes of a 16-bit port, as the kernel's inbound `source:port` does. */
export function byteSwap16(port: number): number {
  return ((port & 0xff) << 8) | ((port >> 8) & 0xff);
}

// --- the kernel's service table (driver:src/sd.c) ---

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Raw CRC-32C (no final inversion), as the kernel's `crc32c(seed, data, len)`. */
export function crc32cRaw(seed: number, data: Uint8Array): number {
  let c = seed >>> 0;
  for (const b of data) c = CRC32C_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

const GOLDEN_RATIO_64 = 0x61c8864680b583ebn;
const MASK_64 = (1n << 64n) - 1n;
const encoder = new TextEncoder();

/** Bucket of a service address in the kernel's `DECLARE_HASHTABLE(htable, 8)` (hash_64). */
export function serviceBucket(address: string): number {
  const key = BigInt(crc32cRaw(~1 >>> 0, encoder.encode(address)));
  return Number(((key * GOLDEN_RATIO_64) & MASK_64) >> 56n);
}

const bucketCache = new WeakMap<LoadSdInfo, Map<number, string[]>>();

/** Entries per bucket, most recently added first (`hlist_add_head`, JSON order). */
function buckets(sd: LoadSdInfo): Map<number, string[]> {
  let b = bucketCache.get(sd);
  if (!b) {
    b = new Map();
    for (const key of Object.keys(sd)) {
      const n = serviceBucket(key);
      b.set(n, [key, ...(b.get(n) ?? [])]);
    }
    bucketCache.set(sd, b);
  }
  return b;
}

function tableGet(sd: LoadSdInfo, address: string): string | undefined {
  return buckets(sd).get(serviceBucket(address))?.find((k) => k.startsWith(address));
}

/**
 * Looks up an outbound destination as the kernel does: the bare IP, then `ip:port`.
 *
 * @example
 * ```ts
 * import { lookupService } from "./match_input.ts";
 * lookupService({ "127.0.0.1:8000": { labels: ["app=web"] } }, "127.0.0.1", 8000).key;
 * // "127.0.0.1:8000"
 * ```
 */
export function lookupService(sd: LoadSdInfo, ip: string, port?: number): ServiceLookup {
  const tried = [ip];
  if (port !== undefined) tried.push(`${ip}:${port}`);
  for (const address of tried) {
    const key = tableGet(sd, address);
    if (key !== undefined) {
      const out: ServiceLookup = { tried: tried.slice(0, tried.indexOf(address) + 1), key };
      out.labels = [...(sd[key]?.labels ?? [])];
      if (key !== address) out.prefixMatch = true;
      return out;
    }
  }
  return { tried };
}

function checkPort(name: string, port: number | undefined): void {
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    throw new RangeError(`Cannot use ${name} ${port}: a port is an integer from 0 to 65535`);
  }
}

/**
 * Builds the kernel's policy input for a connection. Unknown connection facts (no IP or port
 * given) leave their label out and add a note: the real kernel always adds all four.
 */
export function buildKernelInput(payloads: KernelPayloads, conn: ConnectionInput): BuiltInput {
  checkPort("source port", conn.sourcePort);
  checkPort("destination port", conn.destinationPort);
  const notes: string[] = [];
  const srcIp = conn.sourceIp === undefined ? undefined : kernelIp(conn.sourceIp);
  const dstIp = conn.destinationIp === undefined ? undefined : kernelIp(conn.destinationIp);
  const labels = new Set(conn.labels);
  labels.add(`direction=${conn.direction}`);
  if (srcIp !== undefined) labels.add(`source:ip=${srcIp}`);
  if (conn.sourcePort !== undefined) {
    let printed = conn.sourcePort;
    if (conn.direction === "input") {
      printed = byteSwap16(conn.sourcePort);
      notes.push(
        `inbound source:port is byte-swapped by the kernel: port ${conn.sourcePort} appears as ` +
          `source:port=${printed}`,
      );
    }
    labels.add(`source:port=${printed}`);
  }
  if (dstIp !== undefined) labels.add(`destination:ip=${dstIp}`);
  if (conn.destinationPort !== undefined) labels.add(`destination:port=${conn.destinationPort}`);
  for (
    const [name, given] of [
      ["source:ip", srcIp],
      ["source:port", conn.sourcePort],
      ["destination:ip", dstIp],
      ["destination:port", conn.destinationPort],
    ] as const
  ) {
    if (given === undefined) {
      notes.push(`${name} not given: the label is left out (the kernel always adds it)`);
    }
  }
  const input: KernelInput = { labels: [...labels] };
  if (conn.direction === "input") return { evaluated: true, input, notes };
  if (dstIp === undefined) {
    notes.push(
      "destination IP not given: the service table was not consulted; the kernel intercepts an " +
        "outbound connection only if its destination is in the table, and egress entries need " +
        "that entry's labels",
    );
    return { evaluated: true, input, notes };
  }
  const service = lookupService(payloads.load_sd_info, dstIp, conn.destinationPort);
  if (service.key === undefined) return { evaluated: false, input, service, notes };
  if (service.prefixMatch) {
    notes.push(
      `kernel quirk: entry "${service.key}" was found for "${service.tried.at(-1)}" only ` +
        "because the kernel compares the looked-up length and both share a hash bucket",
    );
  }
  input.remote = { labels: [...new Set(service.labels)] };
  return { evaluated: true, input, service, notes };
}
