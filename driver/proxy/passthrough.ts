/**
 * ALPN `camblet/passthrough`: the two agents authenticate each other with a TLS 1.2 handshake,
 * then the connection carries the application's own bytes (its own TLS) unwrapped, as
 * camblet-driver does when the application already speaks TLS.
 *
 * Node's TLS socket owns whatever it reads, so for such connections it runs over a transport
 * that feeds it only the peer's handshake: in TLS 1.2 each side's handshake ends with a
 * ChangeCipherSpec record and one more (encrypted Finished) record; every byte after that is
 * the application's and stays with the TCP socket.
 *
 * @module
 */
import type { Socket } from "node:net";
import { Duplex } from "node:stream";

/** TLS record content type of ChangeCipherSpec. */
const CHANGE_CIPHER_SPEC = 20;
const HANDSHAKE = 22;

/** True when `b` starts like a TLS handshake record (what a TLS client sends first). */
export function looksLikeTls(b: Uint8Array): boolean {
  return b.length >= 3 && b[0] === HANDSHAKE && b[1] === 3 && b[2]! <= 4;
}

/**
 * The ALPN protocols a ClientHello offers, or `undefined` while `b` does not yet hold the whole
 * first record (`null` when it is no ClientHello or has no ALPN extension).
 */
export function clientHelloAlpn(b: Uint8Array): string[] | null | undefined {
  if (b.length < 5) return undefined;
  if (!looksLikeTls(b)) return null;
  const recLen = (b[3]! << 8) | b[4]!;
  if (b.length < 5 + recLen) return undefined;
  const h = b.subarray(5, 5 + recLen);
  if (h[0] !== 1) return null; // not a ClientHello
  let p = 4 + 2 + 32; // handshake header, client_version, random
  const skip = (lenBytes: number) => {
    let n = 0;
    for (let i = 0; i < lenBytes; i++) n = (n << 8) | (h[p + i] ?? 0);
    p += lenBytes + n;
  };
  skip(1); // session_id
  skip(2); // cipher_suites
  skip(1); // compression_methods
  if (p + 2 > h.length) return null;
  const extEnd = Math.min(h.length, p + 2 + ((h[p]! << 8) | h[p + 1]!));
  p += 2;
  while (p + 4 <= extEnd) {
    const type = (h[p]! << 8) | h[p + 1]!;
    const len = (h[p + 2]! << 8) | h[p + 3]!;
    if (type === 16) { // application_layer_protocol_negotiation
      const out: string[] = [];
      let q = p + 6;
      const end = Math.min(p + 4 + len, extEnd);
      while (q < end) {
        const n = h[q]!;
        out.push(new TextDecoder().decode(h.subarray(q + 1, q + 1 + n)));
        q += 1 + n;
      }
      return out;
    }
    p += 4 + len;
  }
  return null;
}

/**
 * Splits the peer's bytes into its handshake records (for the TLS engine) and what follows
 * (the application's).
 */
export class HandshakeSplitter {
  #pending = new Uint8Array(0);
  #afterCcs = false;
  #done = false;

  /** True once the peer's Finished record has been passed on. */
  get done(): boolean {
    return this.#done;
  }

  /** Feeds a chunk; returns the bytes for the TLS engine and, once done, the rest. */
  push(chunk: Uint8Array): { handshake: Uint8Array; rest: Uint8Array } {
    if (this.#done) return { handshake: new Uint8Array(0), rest: chunk };
    const buf = concat(this.#pending, chunk);
    let off = 0;
    while (!this.#done && off + 5 <= buf.length) {
      const len = (buf[off + 3]! << 8) | buf[off + 4]!;
      if (off + 5 + len > buf.length) break;
      const type = buf[off]!;
      off += 5 + len;
      if (this.#afterCcs) this.#done = true;
      else if (type === CHANGE_CIPHER_SPEC) this.#afterCcs = true;
    }
    // Whole records go to TLS now; a partial one waits (unless we are past the handshake).
    this.#pending = this.#done ? new Uint8Array(0) : buf.slice(off);
    return {
      handshake: buf.subarray(0, off),
      rest: this.#done ? buf.subarray(off) : new Uint8Array(0),
    };
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** A TLS transport over `tcp` that sees the peer's handshake first. */
export interface SplitTransport {
  /** Give this to `tls.connect({ socket })` or `tlsServer.emit("connection", …)`. */
  transport: Duplex;
  /**
   * Passthrough chosen: stops carrying TLS (later TLS writes are dropped) and puts the bytes the
   * peer sent after its handshake back at the head of `tcp`, which is then the application's.
   */
  detach(): void;
  /** Plain `camblet` chosen: the transport carries every byte from now on, like `tcp` would. */
  keepTls(): void;
}

/** Wraps connected `tcp` for a handshake that may end in passthrough. */
export function splitTransport(tcp: Socket): SplitTransport {
  const splitter = new HandshakeSplitter();
  let mode: "handshake" | "tls" | "raw" = "handshake";
  const rest: Uint8Array[] = [];
  const transport = new Duplex({
    read() {
      if (mode === "tls") tcp.resume();
    },
    write(chunk: Uint8Array, _enc, cb) {
      if (mode === "raw" || tcp.destroyed) return cb();
      if (tcp.write(chunk)) cb();
      else tcp.once("drain", () => cb());
    },
    final(cb) {
      if (mode === "tls") tcp.end(); // a TLS close_notify was written: FIN after it
      cb();
    },
    destroy(err, cb) {
      if (mode === "tls") tcp.destroy();
      cb(err);
    },
  });
  const onData = (chunk: Uint8Array) => {
    if (mode === "tls") {
      if (!transport.push(chunk)) tcp.pause();
      return;
    }
    const { handshake, rest: r } = splitter.push(chunk);
    if (handshake.length > 0) transport.push(handshake);
    if (r.length > 0) rest.push(r);
    if (splitter.done) tcp.pause(); // the application's bytes wait for the ALPN verdict
  };
  const onEnd = () => {
    if (mode !== "raw") transport.push(null);
  };
  const onError = (e: Error) => {
    if (mode !== "raw") transport.destroy(e);
  };
  const onClose = () => {
    if (mode !== "raw") transport.destroy();
  };
  tcp.on("data", onData);
  tcp.on("end", onEnd);
  tcp.on("error", onError);
  tcp.on("close", onClose);
  tcp.resume();
  return {
    transport,
    detach() {
      mode = "raw";
      tcp.off("data", onData);
      tcp.off("end", onEnd);
      tcp.off("error", onError);
      tcp.off("close", onClose);
      tcp.pause();
      for (const r of rest.reverse()) tcp.unshift(r);
      transport.destroy();
    },
    keepTls() {
      mode = "tls";
      for (const r of rest) transport.push(r);
      rest.length = 0;
      tcp.resume();
    },
  };
}

/** What {@linkcode peekFirst} read. */
export interface Peeked {
  /** The bytes read (none: nothing within the time, a server-first protocol). */
  data?: Uint8Array;
  /** The sender closed its side during the peek; its "end" event has already fired. */
  ended: boolean;
}

/**
 * Reads the first bytes `s` sends, until `enough(bytes)` or `timeoutMs`, and leaves `s` paused.
 * The bytes are consumed: the caller forwards them (or `unshift`s them back, unless `ended`).
 */
export function peekFirst(
  s: Socket,
  timeoutMs: number,
  enough: (b: Uint8Array) => boolean = () => true,
): Promise<Peeked> {
  return new Promise((resolve) => {
    let got: Uint8Array = new Uint8Array(0);
    let ended = false;
    const finish = () => {
      clearTimeout(timer);
      s.off("data", onData);
      s.off("end", onEnd);
      s.off("close", finish);
      s.pause();
      resolve(got.length > 0 ? { data: got, ended } : { ended });
    };
    const onData = (c: Uint8Array) => {
      got = concat(got, c);
      if (enough(got) || got.length > 16 * 1024 + 5) finish();
    };
    const onEnd = () => {
      ended = true;
      finish();
    };
    const timer = setTimeout(finish, timeoutMs);
    s.on("data", onData);
    s.once("end", onEnd);
    s.once("close", finish);
    s.resume();
  });
}
