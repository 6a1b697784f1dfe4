/**
 * IP addresses and hostnames as the kernel's service table wants them: IPv4 dotted (`%pI4`),
 * IPv6 fully expanded, lower-case, 8×4 hex groups without brackets (`%pI6`).
 *
 * @module
 */

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const HOST_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * Returns the IPv4 address in the kernel's form, or `undefined` when `text` is not one.
 * Leading zeros are refused (`010.0.0.1` is octal to some parsers and decimal to others).
 *
 * @example
 * ```ts
 * import { ipv4Key } from "./address.ts";
 * ipv4Key("127.0.0.1"); // "127.0.0.1"
 * ```
 */
export function ipv4Key(text: string): string | undefined {
  const m = IPV4.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1, 5);
  for (const p of parts) {
    if (Number(p) > 255 || (p.length > 1 && p.startsWith("0"))) return undefined;
  }
  return parts.join(".");
}

function ipv4Groups(text: string): string[] | undefined {
  const v4 = ipv4Key(text);
  if (!v4) return undefined;
  const [a, b, c, d] = v4.split(".").map(Number) as [number, number, number, number];
  return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
}

/**
 * Returns the IPv6 address fully expanded (`0000:…:0001`), or `undefined` when `text` is not one.
 * Accepts `::` compression, a dotted IPv4 tail and surrounding brackets; refuses zone ids.
 *
 * @example
 * ```ts
 * import { ipv6Key } from "./address.ts";
 * ipv6Key("::1"); // "0000:0000:0000:0000:0000:0000:0000:0001"
 * ```
 */
export function ipv6Key(text: string): string | undefined {
  let s = text;
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  if (!s.includes(":") || s.includes("%")) return undefined;
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const parse = (part: string, last: boolean): string[] | undefined => {
    if (part === "") return [];
    const groups = part.split(":");
    const out: string[] = [];
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (last && i === groups.length - 1 && g.includes(".")) {
        const v4 = ipv4Groups(g);
        if (!v4) return undefined;
        out.push(...v4);
      } else if (HEX_GROUP.test(g)) out.push(g);
      else return undefined;
    }
    return out;
  };
  const head = parse(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? parse(halves[1]!, true) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  return [...head, ...Array<string>(missing).fill("0"), ...tail]
    .map((g) => g.toLowerCase().padStart(4, "0"))
    .join(":");
}

/** The kernel's form of an IPv4 or IPv6 literal, or `undefined` when `text` is neither. */
export function ipKey(text: string): string | undefined {
  return ipv4Key(text) ?? ipv6Key(text);
}

/**
 * Whether `text` is a DNS hostname (RFC 1123 labels, ≤253 characters, optional trailing dot).
 * A name whose last label is all digits is refused, so a mistyped IPv4 address is not a hostname.
 *
 * @example
 * ```ts
 * import { isHostname } from "./address.ts";
 * isHostname("web.acme.corp"); // true
 * isHostname("300.1.1.1"); // false
 * ```
 */
export function isHostname(text: string): boolean {
  const s = text.endsWith(".") ? text.slice(0, -1) : text;
  if (s === "" || s.length > 253) return false;
  const labels = s.split(".");
  if (/^\d+$/.test(labels[labels.length - 1]!)) return false;
  return labels.every((l) => HOST_LABEL.test(l));
}

/** Why `text` is neither an IP literal nor a hostname, or `undefined` when it is one of them. */
export function addressProblem(text: string): string | undefined {
  if (ipKey(text) !== undefined || isHostname(text)) return undefined;
  if (text.includes("%")) return `"${text}" has an IPv6 zone id, which the kernel cannot match`;
  if (/^[\d.]+:\d+$/.test(text) || /^\[.*\]:\d+$/.test(text)) {
    return `"${text}" includes a port; put the port in the "port" field`;
  }
  return `"${text}" is neither an IP address nor a hostname`;
}

/** The service-table key for an address literal and port: `ip:port`. */
export function serviceKey(ip: string, port: number): string | undefined {
  const key = ipKey(ip);
  return key === undefined ? undefined : `${key}:${port}`;
}
