/**
 * The proxy's only FFI file: socket options Deno does not offer, on sockets Deno does not expose
 * the fd of. Deno sockets have no `fd` property, so a socket is found by probing this process's
 * fds with `getsockname`/`getpeername` (well under a millisecond for a few thousand fds).
 *
 * Used for: the listener fds the sk_lookup SOCKMAP needs, TCP_NODELAY where a socket has no
 * `setNoDelay()` (without it each TLS handshake flight waits 40–90 ms for delayed ACKs), and
 * resets on TLS legs: Deno's TLS layer neither sends a RST (`resetAndDestroy` closes gracefully)
 * nor reports a received one (it reads as EOF), so both are done on the fd here.
 *
 * @module
 */
import type { Socket } from "node:net";
import { ipText, normalizeIp } from "../bpf/ip.ts";

const SYMBOLS = {
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  getpeername: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  dup: { parameters: ["i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

let libc: Deno.DynamicLibrary<typeof SYMBOLS>["symbols"] | undefined;
function lib() {
  libc ??= Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  return libc;
}

function errno(): number {
  return new Deno.UnsafePointerView(lib().__errno_location()!).getInt32();
}

const AF_INET = 2;
const SO_LINGER = 13;
const TCP_INFO = 11;
/** `tcpi_state` of a socket that was reset (or fully closed: see {@linkcode tcpState}). */
export const TCP_CLOSE = 7;
const AF_INET6 = 10;
const SOL_SOCKET = 1;
const SO_ACCEPTCONN = 30;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
/** Highest fd probed; Deno's default soft RLIMIT_NOFILE is far below. */
const MAX_FD = 65536;

/** One socket address as the kernel reports it. */
export interface SockAddr {
  family: 4 | 6;
  /** IPv4 dotted (also for a v4-mapped peer of an IPv6 socket), or IPv6 compressed. */
  ip: string;
  port: number;
}

function readSockAddr(buf: Uint8Array): SockAddr | undefined {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const family = dv.getUint16(0, true);
  const port = dv.getUint16(2, false);
  if (family === AF_INET) return { family: 4, ip: [...buf.subarray(4, 8)].join("."), port };
  if (family !== AF_INET6) return undefined;
  return { family: 6, ip: ipText(buf.subarray(8, 24)), port };
}

function sockname(
  fd: number,
  peer: boolean,
  buf: Uint8Array<ArrayBuffer>,
  len: Uint8Array<ArrayBuffer>,
) {
  new DataView(len.buffer).setUint32(0, buf.length, true);
  const rc = peer ? lib().getpeername(fd, buf, len) : lib().getsockname(fd, buf, len);
  return rc === 0 ? readSockAddr(buf) : undefined;
}

function intOpt(fd: number, level: number, name: number): number | undefined {
  const v = new Uint8Array(4);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, 4, true);
  if (lib().getsockopt(fd, level, name, v, len) !== 0) return undefined;
  return new DataView(v.buffer).getInt32(0, true);
}

/** What {@linkcode findSocketFd} looks for; unset fields match anything. */
export interface SocketQuery {
  local: { ip?: string; port: number };
  remote?: { ip?: string; port: number };
  /** Only listening sockets (SO_ACCEPTCONN). */
  listening?: boolean;
}

function matches(a: SockAddr | undefined, want: { ip?: string; port: number }): boolean {
  if (!a || a.port !== want.port) return false;
  return want.ip === undefined || normalizeIp(a.ip) === normalizeIp(want.ip);
}

/**
 * The fd of this process's TCP socket matching `q`, or `undefined`. Racy only against a
 * concurrent close (then the fd may name another socket or none).
 *
 * @example
 * ```ts ignore
 * const fd = findSocketFd({ local: { ip: "127.0.0.1", port: 15006 }, listening: true });
 * ```
 */
export function findSocketFd(q: SocketQuery, maxFd = MAX_FD): number | undefined {
  const buf = new Uint8Array(128);
  const len = new Uint8Array(4);
  let misses = 0;
  for (let fd = 0; fd < maxFd; fd++) {
    const local = sockname(fd, false, buf, len);
    if (local === undefined) {
      // EBADF runs: past the highest open fd once 1024 in a row are closed.
      if (errno() === 9 && ++misses > 1024) return undefined;
      continue;
    }
    misses = 0;
    if (!matches(local, q.local)) continue;
    if (
      q.listening !== undefined && (intOpt(fd, SOL_SOCKET, SO_ACCEPTCONN) === 1) !== q.listening
    ) {
      continue;
    }
    if (q.remote && !matches(sockname(fd, true, buf, len), q.remote)) continue;
    return fd;
  }
  return undefined;
}

/** The fd of the listening socket bound to `ip:port`; throws when there is none. */
export function findListenerFd(ip: string, port: number): number {
  const fd = findSocketFd({ local: { ip, port }, listening: true });
  if (fd === undefined) throw new Error(`Cannot find the fd of the listener on ${ip}:${port}`);
  return fd;
}

/** Sets TCP_NODELAY on `fd`; throws with errno on failure. */
export function setNoDelayFd(fd: number): void {
  const one = new Uint8Array([1, 0, 0, 0]);
  if (lib().setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, one, 4) !== 0) {
    throw new Error(`Cannot set TCP_NODELAY on fd ${fd}: errno ${errno()}`);
  }
}

/** Whether TCP_NODELAY is set on `fd` (tests and diagnostics). */
export function noDelayFd(fd: number): boolean {
  return intOpt(fd, IPPROTO_TCP, TCP_NODELAY) === 1;
}

/**
 * A duplicate of the fd of a connected `node:net` socket, closed automatically when `s` emits
 * "close" (until then the socket stays open even after Deno closes its own fd, so it must be).
 * Deno's TCP handle hands out such a dup (`fdForIpc()`, internal); its answer is checked against
 * the socket's local port. Without it the fds are probed (slow: microseconds per open fd) and the
 * match is dup'ed. `undefined` when the socket is gone.
 */
export function socketFdDup(s: Socket): number | undefined {
  if (s.localPort === undefined || s.destroyed) return undefined;
  const handle = (s as { _handle?: { fdForIpc?: () => unknown } })._handle;
  let fd: number | undefined;
  try {
    const v = handle?.fdForIpc?.();
    if (typeof v === "number" && v >= 0) fd = v;
  } catch { /* not a TCP handle */ }
  if (fd !== undefined && localPortOf(fd) !== s.localPort) {
    lib().close(fd);
    fd = undefined;
  }
  if (fd === undefined) {
    const found = findSocketFd({
      local: { port: s.localPort },
      ...(s.remotePort !== undefined ? { remote: { port: s.remotePort } } : {}),
    });
    if (found === undefined) return undefined;
    fd = lib().dup(found);
    if (fd < 0) return undefined;
  }
  const owned = fd;
  s.once("close", () => lib().close(owned));
  return owned;
}

function localPortOf(fd: number): number | undefined {
  const buf = new Uint8Array(128);
  const len = new Uint8Array(4);
  return sockname(fd, false, buf, len)?.port;
}

/** SO_LINGER {on, 0 s}: the next close() of `fd` sends a RST instead of a FIN. */
export function setLingerZero(fd: number): boolean {
  const v = new Uint8Array(8);
  new DataView(v.buffer).setInt32(0, 1, true);
  return lib().setsockopt(fd, SOL_SOCKET, SO_LINGER, v, 8) === 0;
}

/**
 * `tcpi_state` of `fd` (TCP_INFO), e.g. {@linkcode TCP_CLOSE} after a RST. Also TCP_CLOSE after
 * an orderly close in which we sent our FIN first (the socket moved to TIME_WAIT).
 */
export function tcpState(fd: number): number | undefined {
  const v = new Uint8Array(256);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, v.length, true);
  if (lib().getsockopt(fd, IPPROTO_TCP, TCP_INFO, v, len) !== 0) return undefined;
  return v[0];
}
