/**
 * Byte layouts of the structs in `steer.bpf.c` (checked against its BTF: `bpftool btf dump
 * file`). Addresses are 16 bytes in network order with IPv4 as `::ffff:a.b.c.d`; every other
 * integer is little-endian, because the object is built for `bpfel` (x86_64, aarch64).
 *
 * @module
 */
import { ipBytes, ipText } from "./ip.ts";

export { ipBytes, ipText } from "./ip.ts";

/** `struct addr_port`: 16-byte address + u32 port. */
export const ADDR_PORT_SIZE = 20;
/** `struct orig_dst`: addr_port, tgid, uid, gid, flags, (pad), u64 cookie. */
export const ORIG_DST_SIZE = 48;
/** `struct config`. */
export const CONFIG_SIZE = 40;

/** `enum stat` indexes, in order. */
export const STAT_NAMES = [
  "redirected",
  "recorded",
  "steered",
  "dropped",
  "bypassed",
  "peername",
] as const;
/** One steering counter name. */
export type StatName = typeof STAT_NAMES[number];

/** `CFG_FAIL_CLOSED`. */
export const CFG_FAIL_CLOSED = 1;

/** True for IPv4 text and v4-mapped IPv6 text. */
export function isV4(ip: string): boolean {
  const b = ipBytes(ip);
  return b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
}

/** `struct addr_port` for `ip` and `port` (0 = any port in the protected table). */
export function addrPort(ip: string, port: number): Uint8Array<ArrayBuffer> {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Cannot use port ${port}: not in 0..65535`);
  }
  const out = new Uint8Array(ADDR_PORT_SIZE);
  out.set(ipBytes(ip), 0);
  new DataView(out.buffer).setUint32(16, port, true);
  return out;
}

/** Decoded `struct addr_port`. */
export function readAddrPort(b: Uint8Array): { ip: string; port: number } {
  return {
    ip: ipText(b.subarray(0, 16)),
    port: new DataView(b.buffer, b.byteOffset).getUint32(16, true),
  };
}

/** What sockops recorded for one redirected connection. */
export interface OriginalDestination {
  /** The address the application dialled (IPv4 dotted, IPv6 compressed). */
  ip: string;
  port: number;
  /** The dialling process (thread group id), its uid and gid. */
  pid: number;
  uid: number;
  gid: number;
  /** Socket cookie of the application's socket. */
  cookie: bigint;
}

/** Decodes `struct orig_dst`. */
export function readOrigDst(b: Uint8Array): OriginalDestination {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const { ip, port } = readAddrPort(b);
  return {
    ip,
    port,
    pid: dv.getUint32(20, true),
    uid: dv.getUint32(24, true),
    gid: dv.getUint32(28, true),
    cookie: dv.getBigUint64(40, true),
  };
}

/** Fields of `struct config`. */
export interface SteerConfig {
  netnsCookie: bigint;
  agentTgid: number;
  failClosed: boolean;
  /** IPv4 of the outbound listener. */
  proxyIp4: string;
  /** IPv6 of the outbound listener; undefined = real IPv6 is not redirected. */
  proxyIp6?: string | undefined;
  proxyPort: number;
}

/** Encodes `struct config`. */
export function configBytes(c: SteerConfig): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(CONFIG_SIZE);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, c.netnsCookie, true);
  dv.setUint32(8, c.agentTgid, true);
  dv.setUint32(12, c.failClosed ? CFG_FAIL_CLOSED : 0, true);
  if (!isV4(c.proxyIp4)) throw new TypeError(`Cannot use "${c.proxyIp4}" as the IPv4 listener`);
  out.set(ipBytes(c.proxyIp4).subarray(12, 16), 16);
  if (c.proxyIp6 !== undefined) {
    if (isV4(c.proxyIp6)) throw new TypeError(`Cannot use "${c.proxyIp6}" as the IPv6 listener`);
    out.set(ipBytes(c.proxyIp6), 20);
  }
  dv.setUint32(36, c.proxyPort, true);
  return out;
}

/** A u32 little-endian key or value. */
export function u32(v: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, v >>> 0, true);
  return out;
}

/** A u64 little-endian value. */
export function u64(v: bigint): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, v, true);
  return out;
}
