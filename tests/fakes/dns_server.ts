/**
 * A tiny authoritative DNS server on 127.0.0.1 (UDP) for tests: answers A and AAAA queries from
 * a fixed table, NXDOMAIN for unknown names. Real packets, so `Deno.resolveDns` is exercised.
 *
 * @module
 */
import { createSocket } from "node:dgram";
import { ipv6Key } from "../../agent/policy/address.ts";

/** A running fake DNS server. */
export interface FakeDnsServer {
  port: number;
  /** Names asked for, in order (`name/TYPE`). */
  queries: string[];
  close(): Promise<void>;
}

function readName(msg: Uint8Array, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let i = offset;
  while (msg[i]! !== 0) {
    const len = msg[i]!;
    labels.push(new TextDecoder().decode(msg.subarray(i + 1, i + 1 + len)));
    i += len + 1;
  }
  return { name: labels.join(".").toLowerCase(), end: i + 1 };
}

function rdata(type: number, ip: string): Uint8Array | undefined {
  if (type === 1 && /^\d+\.\d+\.\d+\.\d+$/.test(ip)) {
    return new Uint8Array(ip.split(".").map(Number));
  }
  const v6 = type === 28 ? ipv6Key(ip) : undefined;
  if (!v6) return undefined;
  const out = new Uint8Array(16);
  v6.split(":").forEach((g, i) => {
    out[2 * i] = parseInt(g.slice(0, 2), 16);
    out[2 * i + 1] = parseInt(g.slice(2), 16);
  });
  return out;
}

/** Starts a server answering from `records` (name → IPv4 and IPv6 addresses). */
export function startFakeDns(records: Record<string, string[]>): Promise<FakeDnsServer> {
  const socket = createSocket("udp4");
  const queries: string[] = [];
  socket.on("message", (msg: Uint8Array, rinfo: { port: number; address: string }) => {
    const { name, end } = readName(msg, 12);
    const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
    const type = view.getUint16(end);
    queries.push(`${name}/${type === 1 ? "A" : type === 28 ? "AAAA" : type}`);
    const known = Object.hasOwn(records, name);
    const answers = (records[name] ?? []).map((ip) => rdata(type, ip)).filter((r) =>
      r !== undefined
    );
    const question = msg.subarray(12, end + 4);
    const parts: number[] = [
      msg[0]!,
      msg[1]!,
      0x85,
      known ? 0x80 : 0x83, // id; QR AA RD; RA, rcode
      0,
      1,
      0,
      answers.length,
      0,
      0,
      0,
      0,
      ...question,
    ];
    for (const r of answers) {
      parts.push(0xc0, 12, type >> 8, type & 0xff, 0, 1, 0, 0, 0, 60, 0, r.length, ...r);
    }
    socket.send(new Uint8Array(parts), rinfo.port, rinfo.address);
  });
  return new Promise((resolve) => {
    socket.bind(0, "127.0.0.1", () => {
      resolve({
        port: socket.address().port,
        queries,
        close: () => new Promise<void>((done) => socket.close(() => done())),
      });
    });
  });
}
