/**
 * IP addresses as the BPF maps hold them: 16 bytes in network order, IPv4 as v4-mapped
 * `::ffff:a.b.c.d`, and back to text (IPv4 dotted, IPv6 compressed as RFC 5952 says).
 *
 * @module
 */
import { isIPv4, isIPv6 } from "node:net";

/**
 * The 16 network-order bytes of an IP; IPv4 (and `::ffff:a.b.c.d`) become v4-mapped.
 * Throws `TypeError` naming the text when it is no IP.
 *
 * @example
 * ```ts
 * import { ipBytes } from "./ip.ts";
 * ipBytes("10.0.0.1"); // 0,0,0,0,0,0,0,0,0,0,255,255,10,0,0,1
 * ```
 */
export function ipBytes(ip: string): Uint8Array<ArrayBuffer> {
  let text = ip.trim();
  if (text.startsWith("[") && text.endsWith("]")) text = text.slice(1, -1);
  text = text.replace(/%.*$/, "");
  const out = new Uint8Array(16);
  if (isIPv4(text)) {
    out[10] = 0xff;
    out[11] = 0xff;
    text.split(".").forEach((o, i) => out[12 + i] = Number(o));
    return out;
  }
  if (!isIPv6(text)) throw new TypeError(`Cannot use "${ip}" as an IP address: not IPv4 or IPv6`);
  const v4tail = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4tail) {
    const o = v4tail[2]!.split(".").map(Number);
    text = `${v4tail[1]}${((o[0]! << 8) | o[1]!).toString(16)}:${
      ((o[2]! << 8) | o[3]!).toString(16)
    }`;
  }
  const [head, tail] = text.split("::") as [string, string | undefined];
  const groups = (s: string) => s === "" ? [] : s.split(":");
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  all.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

/** Text form of 16 address bytes: dotted IPv4 when v4-mapped, else compressed IPv6. */
export function ipText(bytes: Uint8Array): string {
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff &&
    bytes[11] === 0xff;
  if (mapped) return [...bytes.subarray(12, 16)].join(".");
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((bytes[i]! << 8) | bytes[i + 1]!);
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i > 1) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = g.map((v) => v.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/**
 * One canonical text per address, for comparisons: `::ffff:1.2.3.4` → `1.2.3.4`, IPv6 compressed.
 *
 * @example
 * ```ts
 * import { normalizeIp } from "./ip.ts";
 * normalizeIp("::FFFF:10.0.0.1"); // "10.0.0.1"
 * ```
 */
export function normalizeIp(ip: string): string {
  return ipText(ipBytes(ip));
}
