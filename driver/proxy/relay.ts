/**
 * Joins two sockets: bytes flow both ways with backpressure (a slow reader pauses the other
 * side), a FIN becomes a FIN (half-close; both sockets are `allowHalfOpen`), a reset becomes a
 * reset, and any other error closes both. Errors never leave this pair.
 *
 * Deno's TLS sockets keep reading from TCP while paused (everything the peer sends piles up in
 * memory), so a TLS leg is paused at its TCP handle too (`readStop`/`readStart`).
 *
 * @module
 */
import type { Socket } from "node:net";
import { setLingerZero, TCP_CLOSE, tcpState } from "./sockopt.ts";

/** One side of a relay. */
export interface RelayEnd {
  /** What bytes are read from and written to (a TCP or TLS socket). */
  stream: Socket;
  /** The TCP socket under `stream`, reset when the other side was reset. */
  tcp: Socket;
  /**
   * The fd of `tcp` when `stream` is TLS: Deno's TLS layer can neither send nor report a RST,
   * so resets on this side go through the fd (see sockopt.ts).
   */
  fd?: number | undefined;
}

/** How a relay ended. */
export interface RelayResult {
  /** Bytes read from `a` and written to `b`, and the reverse. */
  aToB: number;
  bToA: number;
  /** The first error, if any (a reset is `ECONNRESET`). */
  error?: Error;
}

const RESET_CODES = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED"]);

function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function reset(end: RelayEnd): void {
  const tcp = end.tcp as Socket & { resetAndDestroy?: () => Socket };
  try {
    if (end.fd !== undefined) {
      if (!end.stream.destroyed) setLingerZero(end.fd); // close() then sends the RST
    } else if (typeof tcp.resetAndDestroy === "function" && !tcp.destroyed) tcp.resetAndDestroy();
  } catch { /* already gone: destroy below */ }
  end.stream.destroy();
  if (end.tcp !== end.stream) end.tcp.destroy();
}

interface ReadControl {
  readStop(): unknown;
  readStart(): unknown;
}

/** The TCP handle under a TLS leg (internal to node:net), when it can stop reading. */
function tcpHandle(end: RelayEnd): ReadControl | undefined {
  if (end.stream === end.tcp) return undefined; // plain TCP: pausing the stream suffices
  const h = (end.tcp as { _handle?: Partial<ReadControl> | null })._handle;
  return typeof h?.readStop === "function" && typeof h.readStart === "function"
    ? h as ReadControl
    : undefined;
}

/**
 * Relays between `a` and `b` until both directions are done; `onDone` runs once. `onBytes` is
 * called per chunk (for metrics).
 */
export function relay(
  a: RelayEnd,
  b: RelayEnd,
  hooks: {
    onBytes?: (n: number) => void;
    onDone?: (r: RelayResult) => void;
    /** Bytes the caller already moved from `a` to `b` (a peeked first chunk). */
    aToBAhead?: number;
  } = {},
): void {
  const result: RelayResult = { aToB: hooks.aToBAhead ?? 0, bToA: 0 };
  let closed = 0;
  let failed = false;
  const onBytes = hooks.onBytes;

  const flow = (src: RelayEnd, dst: RelayEnd, dir: "aToB" | "bToA") => {
    const handle = tcpHandle(src);
    let stopped = false;
    const resume = () => {
      if (!stopped) return;
      stopped = false;
      handle?.readStart();
      src.stream.resume();
    };
    src.stream.on("data", (chunk: Uint8Array) => {
      result[dir] += chunk.length;
      onBytes?.(chunk.length);
      if (!dst.stream.write(chunk) && !stopped) {
        stopped = true;
        src.stream.pause();
        handle?.readStop();
        dst.stream.once("drain", resume);
      }
    });
    src.stream.once("end", () => dst.stream.end());
  };

  const fail = (from: RelayEnd, other: RelayEnd) => (err: Error) => {
    if (failed) return;
    failed = true;
    result.error = err;
    const code = errorCode(err);
    if (code !== undefined && RESET_CODES.has(code)) reset(other);
    else {
      other.stream.destroy();
      if (other.tcp !== other.stream) other.tcp.destroy();
    }
    from.stream.destroy();
  };
  a.stream.on("error", fail(a, b));
  b.stream.on("error", fail(b, a));

  // A TLS leg reports a received RST as EOF: tell them apart by the TCP state, before flow()
  // turns the EOF into a FIN. Only while our FIN is unsent: after it, TIME_WAIT reads as CLOSE.
  for (const [self, other] of [[a, b], [b, a]] as const) {
    if (self.fd === undefined) continue;
    self.stream.prependOnceListener("end", () => {
      if (self.stream.writableEnded || tcpState(self.fd!) !== TCP_CLOSE) return;
      const e = Object.assign(new Error("connection reset by the peer"), { code: "ECONNRESET" });
      fail(self, other)(e);
    });
  }

  const onClose = (self: RelayEnd, other: RelayEnd) => () => {
    // Closed before its read side ended (destroyed, timed out): the other side must not hang.
    if (!self.stream.readableEnded && !other.stream.destroyed) other.stream.destroy();
    if (++closed === 2) hooks.onDone?.(result);
  };
  if (!a.stream.destroyed) a.stream.once("close", onClose(a, b));
  if (!b.stream.destroyed) b.stream.once("close", onClose(b, a));

  for (const [self, other] of [[a, b], [b, a]] as const) {
    if (self.stream.destroyed) { // gone before we got here: no "close" will come
      other.stream.destroy();
      queueMicrotask(() => onClose(self, other)());
    }
  }
  flow(a, b, "aToB");
  flow(b, a, "bToA");
  a.stream.resume();
  b.stream.resume();
}
