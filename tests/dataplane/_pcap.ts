/**
 * Enough of pcap to prove what crossed the wire: reads a tcpdump capture (Ethernet, IPv4/IPv6,
 * TCP), reassembles each direction of each TCP connection, and checks whether a byte stream is
 * made of TLS records only.
 *
 * @module
 */

/** One direction of one TCP connection. */
export interface TcpStream {
  /** `src:port>dst:port`. */
  key: string;
  srcPort: number;
  dstPort: number;
  /** Payload in sequence order (retransmissions dropped). */
  data: Uint8Array;
}

function ipText(b: Uint8Array): string {
  if (b.length === 4) return [...b].join(".");
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return g.join(":");
}

/** Reassembled TCP streams of a classic pcap file (tcpdump -w). */
export function tcpStreams(file: Uint8Array): TcpStream[] {
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const magic = dv.getUint32(0, true);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && dv.getUint32(0, false) !== 0xa1b2c3d4 && dv.getUint32(0, false) !== 0xa1b23c4d) {
    throw new Error(`Cannot read pcap: magic ${magic.toString(16)}`);
  }
  const linktype = dv.getUint32(20, le);
  if (linktype !== 1) throw new Error(`Cannot read pcap: link type ${linktype}, want Ethernet`);
  const segs = new Map<
    string,
    { sport: number; dport: number; isn?: number; parts: Map<number, Uint8Array> }
  >();
  let off = 24;
  while (off + 16 <= file.length) {
    const incl = dv.getUint32(off + 8, le);
    const pkt = file.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    if (pkt.length < 14) continue;
    const pdv = new DataView(pkt.buffer, pkt.byteOffset, pkt.byteLength);
    const etype = pdv.getUint16(12, false);
    const ipOff = 14;
    let src: Uint8Array, dst: Uint8Array, tcpOff: number, end: number;
    if (etype === 0x0800) {
      if (pkt[ipOff + 9] !== 6) continue;
      const ihl = (pkt[ipOff]! & 0x0f) * 4;
      end = ipOff + pdv.getUint16(ipOff + 2, false);
      src = pkt.subarray(ipOff + 12, ipOff + 16);
      dst = pkt.subarray(ipOff + 16, ipOff + 20);
      tcpOff = ipOff + ihl;
    } else if (etype === 0x86dd) {
      if (pkt[ipOff + 6] !== 6) continue;
      end = ipOff + 40 + pdv.getUint16(ipOff + 4, false);
      src = pkt.subarray(ipOff + 8, ipOff + 24);
      dst = pkt.subarray(ipOff + 24, ipOff + 40);
      tcpOff = ipOff + 40;
    } else continue;
    const sport = pdv.getUint16(tcpOff, false);
    const dport = pdv.getUint16(tcpOff + 2, false);
    const seq = pdv.getUint32(tcpOff + 4, false);
    const flags = pkt[tcpOff + 13]!;
    const payload = pkt.subarray(tcpOff + (pkt[tcpOff + 12]! >> 4) * 4, end);
    const key = `${ipText(src)}:${sport}>${ipText(dst)}:${dport}`;
    let s = segs.get(key);
    if (!s) segs.set(key, s = { sport, dport, parts: new Map() });
    if (flags & 0x02) s.isn = seq + 1; // SYN
    if (payload.length > 0 && !s.parts.has(seq)) s.parts.set(seq, payload.slice());
  }
  const out: TcpStream[] = [];
  for (const [key, s] of segs) {
    const base = s.isn ?? Math.min(...s.parts.keys());
    const sorted = [...s.parts].map(([seq, d]) => ({ rel: (seq - base) >>> 0, d }))
      .sort((a, b) => a.rel - b.rel);
    const chunks: Uint8Array[] = [];
    let at = 0;
    for (const { rel, d } of sorted) {
      if (rel + d.length <= at) continue; // retransmission
      chunks.push(d.subarray(Math.max(0, at - rel)));
      at = rel + d.length;
    }
    const data = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let p = 0;
    for (const c of chunks) {
      data.set(c, p);
      p += c.length;
    }
    out.push({ key, srcPort: s.sport, dstPort: s.dport, data });
  }
  return out;
}

/** TLS record content types: change_cipher_spec, alert, handshake, application_data. */
const RECORD_TYPES = new Set([20, 21, 22, 23]);

/**
 * Why `data` is not a sequence of whole TLS records, or `undefined` when it is. The first record
 * must be a handshake.
 */
export function notTlsRecords(data: Uint8Array): string | undefined {
  if (data.length === 0) return undefined;
  if (data[0] !== 22) return `first byte ${data[0]} is not a TLS handshake record`;
  let off = 0;
  let n = 0;
  while (off < data.length) {
    if (off + 5 > data.length) return `truncated record header at byte ${off}`;
    const type = data[off]!;
    const major = data[off + 1]!;
    const len = (data[off + 3]! << 8) | data[off + 4]!;
    if (!RECORD_TYPES.has(type)) return `record ${n} at byte ${off} has content type ${type}`;
    if (major !== 3) return `record ${n} at byte ${off} has version ${major}.${data[off + 2]}`;
    if (len > 16384 + 2048) return `record ${n} at byte ${off} is ${len} bytes long`;
    off += 5 + len;
    n++;
  }
  return off === data.length ? undefined : `last record overruns the stream`;
}

/** True when `needle` (text) occurs in `data`. */
export function contains(data: Uint8Array, needle: string): boolean {
  return new TextDecoder("latin1").decode(data).includes(needle);
}
