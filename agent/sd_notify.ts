/**
 * systemd's readiness protocol (`Type=notify`): one datagram such as `READY=1` to the Unix socket
 * named by `NOTIFY_SOCKET`. Deno has no stable Unix datagram socket, so the send goes through libc
 * (`socket`/`sendto`) over FFI; without `NOTIFY_SOCKET` (not under systemd) nothing is sent.
 *
 * @module
 */
import { logger } from "./log.ts";

const log = logger("systemd");

const LIBC = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  sendto: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
    result: "isize",
  },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;
const SUN_PATH_MAX = 108;

/**
 * The `sockaddr_un` for a `NOTIFY_SOCKET` value: a path, or `@name` for the abstract namespace.
 * Returns the bytes and the address length to pass to `sendto`.
 *
 * @example
 * ```ts
 * import { notifyAddress } from "./sd_notify.ts";
 * notifyAddress("/run/systemd/notify").length; // 2 + 19 + 1
 * ```
 */
export function notifyAddress(socket: string): Uint8Array {
  if (!socket.startsWith("/") && !socket.startsWith("@")) {
    throw new TypeError(
      `Cannot notify systemd: NOTIFY_SOCKET "${socket}" is neither a path nor an @abstract name`,
    );
  }
  const abstract = socket.startsWith("@");
  const name = new TextEncoder().encode(abstract ? socket.slice(1) : socket);
  if (name.length + 1 > SUN_PATH_MAX) {
    throw new RangeError(
      `Cannot notify systemd: NOTIFY_SOCKET "${socket}" is longer than ${SUN_PATH_MAX - 1} bytes`,
    );
  }
  // sun_family (host byte order, little-endian on the targets we ship), then sun_path. A path is
  // NUL-terminated; an abstract name starts with NUL and its length is exact.
  const addr = new Uint8Array(2 + 1 + name.length);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(name, abstract ? 3 : 2);
  return addr;
}

/**
 * Sends `state` (e.g. `READY=1\nSTATUS=…`) to systemd. Returns false when `NOTIFY_SOCKET` is unset;
 * throws an `Error` naming the socket and errno when the send fails.
 *
 * @example
 * ```ts ignore
 * import { sdNotify } from "./sd_notify.ts";
 * sdNotify("READY=1");
 * ```
 */
export function sdNotify(
  state: string,
  { socket = Deno.env.get("NOTIFY_SOCKET") }: { socket?: string | undefined } = {},
): boolean {
  if (socket === undefined || socket === "") return false;
  const addr = notifyAddress(socket);
  const lib = Deno.dlopen("libc.so.6", LIBC);
  try {
    const c = lib.symbols;
    const fail = (what: string) => {
      const n = new Deno.UnsafePointerView(c.__errno_location()!).getInt32();
      const p = c.strerror(n);
      const why = p ? Deno.UnsafePointerView.getCString(p) : `errno ${n}`;
      return new Error(`Cannot notify systemd (${what} on NOTIFY_SOCKET "${socket}"): ${why}`);
    };
    const fd = c.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw fail("socket");
    try {
      const msg = new TextEncoder().encode(state);
      const sent = c.sendto(fd, msg, BigInt(msg.length), MSG_NOSIGNAL, addr, addr.length);
      if (Number(sent) < 0) throw fail("sendto");
    } finally {
      c.close(fd);
    }
    return true;
  } finally {
    lib.close();
  }
}

/**
 * {@linkcode sdNotify} for the daemon: a failed notification is logged, never thrown (systemd
 * then times the start out, which says more than a crash would).
 *
 * @example
 * ```ts ignore
 * import { notifySystemd } from "./sd_notify.ts";
 * notifySystemd("READY=1");
 * ```
 */
export function notifySystemd(state: string): void {
  try {
    if (sdNotify(state)) log.debug("Notified systemd", { state: state.split("\n")[0] });
  } catch (e) {
    log.warn("Cannot notify systemd", { error: (e as Error).message });
  }
}
