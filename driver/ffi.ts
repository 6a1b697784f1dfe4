/**
 * The only FFI file: libc `open`/`read`/`write`/`close`, `errno`, and the pty calls the kernel
 * emulator needs. Deno's own file API cannot give exclusive-open errors by errno, and its async
 * ops on one file serialise reads and writes (protocol doc §1, Deno note), so the device is driven
 * through libc directly. Each isolate (main thread, workers) opens libc once, lazily.
 *
 * @module
 */

/** Linux open(2) flags (identical on x86_64 and aarch64). */
export const O_RDWR = 0o2;
/** Do not make a tty our controlling terminal (harmless on /dev/camblet, needed for a pty). */
export const O_NOCTTY = 0o400;
/** Close on exec: a child process must never inherit the kernel link. */
export const O_CLOEXEC = 0o2000000;

/** errno values used by the agent (asm-generic numbers, the same on x86_64 and aarch64). */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  ENODEV: 19,
  EISDIR: 21,
  EINVAL: 22,
  ENOTTY: 25,
  ENOSPC: 28,
  EROFS: 30,
} as const;

const ERRNO_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(ERRNO).map(([name, n]) => [n, name]),
);

/** `EBUSY` for 16; `errno 123` for numbers this table does not know. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

const TIOCEXCL = 0x540c;
const TCSANOW = 0;
/** sizeof(struct termios) is 60 on glibc; a larger buffer is harmless. */
const TERMIOS_BYTES = 128;

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  posix_openpt: { parameters: ["i32"], result: "i32" },
  grantpt: { parameters: ["i32"], result: "i32" },
  unlockpt: { parameters: ["i32"], result: "i32" },
  ptsname_r: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  tcgetattr: { parameters: ["i32", "buffer"], result: "i32" },
  cfmakeraw: { parameters: ["buffer"], result: "void" },
  tcsetattr: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "u64"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let libc: Libc | undefined;

function lib(): Libc {
  if (libc) return libc;
  let lastError: unknown;
  for (const name of ["libc.so.6", "libc.so"]) {
    try {
      libc = Deno.dlopen(name, SYMBOLS).symbols;
      return libc;
    } catch (e) {
      lastError = e;
    }
  }
  throw new Error(`Cannot load libc for the kernel link: ${(lastError as Error).message}`, {
    cause: lastError,
  });
}

/** The calling thread's errno. Read it right after the failing call, on the same thread. */
export function errno(): number {
  const p = lib().__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

/** A failed libc call on the kernel device or a pty; `errno` says why. */
export class DeviceError extends Error {
  override name = "DeviceError";
  readonly errno: number;
  readonly code: string;
  constructor(message: string, errnoValue: number, options?: ErrorOptions) {
    super(message, options);
    this.errno = errnoValue;
    this.code = errnoName(errnoValue);
  }
}

const NOT_LOADED_HELP =
  "the camblet kernel module is not loaded. Install camblet-driver with DKMS " +
  "(apt install dkms linux-headers-$(uname -r), then install the camblet-driver package or run " +
  "`dkms install camblet/<version>` from its sources), load it with `modprobe camblet`, and start " +
  "the agent again (or point --kernel-module-device at another device, e.g. the kernel emulator; " +
  "or run with --driver proxy: the eBPF-steered proxy data plane needs no module)";

/**
 * Explains why `open(path)` failed with `errnoValue`, the way an operator needs to read it.
 *
 * @example
 * ```ts
 * import { ERRNO, openErrorMessage } from "./ffi.ts";
 * openErrorMessage("/dev/camblet", ERRNO.EBUSY);
 * // 'Cannot open "/dev/camblet": another agent already holds /dev/camblet ...'
 * ```
 */
export function openErrorMessage(path: string, errnoValue: number): string {
  const head = `Cannot open "${path}"`;
  switch (errnoValue) {
    case ERRNO.EBUSY:
      return `${head}: another agent already holds ${path} (the device admits one agent at a ` +
        `time; stop the other one, e.g. \`systemctl stop camblet-agent\`) (EBUSY)`;
    case ERRNO.ENOENT:
      return `${head}: the device does not exist, so ${NOT_LOADED_HELP} (ENOENT)`;
    case ERRNO.ENXIO:
    case ERRNO.ENODEV:
      return `${head}: the device node exists but no driver serves it, so ${NOT_LOADED_HELP} ` +
        `(${errnoName(errnoValue)})`;
    case ERRNO.EACCES:
    case ERRNO.EPERM:
      return `${head}: permission denied; the device is root-only, run the agent as root ` +
        `(${errnoName(errnoValue)})`;
    case ERRNO.EISDIR:
      return `${head}: it is a directory, not the camblet device (EISDIR)`;
    default:
      return `${head}: ${errnoName(errnoValue)}`;
  }
}

function cString(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s + "\0");
}

/**
 * Opens `path` read-write with `O_CLOEXEC | O_NOCTTY`, retrying `EINTR`; returns the fd.
 * Throws {@linkcode DeviceError} with {@linkcode openErrorMessage}.
 */
export function openDevice(path: string): number {
  const c = cString(path);
  for (;;) {
    const fd = lib().open(c, O_RDWR | O_CLOEXEC | O_NOCTTY, 0);
    if (fd >= 0) return fd;
    const e = errno();
    if (e === ERRNO.EINTR) continue;
    throw new DeviceError(openErrorMessage(path, e), e);
  }
}

/** Result of one `read()`: bytes read (0 = end of file) or the errno of a failure. */
export type ReadResult = { n: number; errno?: undefined } | { n: -1; errno: number };

/** One blocking `read(fd, buf)`. Does not retry: the caller decides what `EINTR` means. */
export function readOnce(fd: number, buf: Uint8Array<ArrayBuffer>): ReadResult {
  const n = Number(lib().read(fd, buf, BigInt(buf.byteLength)));
  if (n >= 0) return { n };
  return { n: -1, errno: errno() };
}

/**
 * One `write(fd, bytes)` syscall, retried only on `EINTR` (which means nothing was written).
 * Returns the count the kernel took, which may be short; throws {@linkcode DeviceError} on failure.
 */
export function writeOnce(fd: number, bytes: Uint8Array<ArrayBuffer>, what = "device"): number {
  for (;;) {
    const n = Number(lib().write(fd, bytes, BigInt(bytes.byteLength)));
    if (n >= 0) return n;
    const e = errno();
    if (e === ERRNO.EINTR) continue;
    throw new DeviceError(
      `Cannot write ${bytes.byteLength} bytes to the ${what}: ${errnoName(e)}`,
      e,
    );
  }
}

/** `close(fd)`; never throws (there is nothing useful to do about a failed close here). */
export function closeFd(fd: number): void {
  lib().close(fd);
}

/** A pty pair for the kernel emulator: the master fd and the slave's path (`/dev/pts/N`). */
export interface Pty {
  masterFd: number;
  slavePath: string;
}

function check(ret: number, what: string): void {
  if (ret < 0) {
    const e = errno();
    throw new DeviceError(`Cannot ${what}: ${errnoName(e)}`, e);
  }
}

/**
 * Opens a pty in raw mode (no echo, no line editing, no CR/LF mapping, every byte passed as is),
 * so it carries the device protocol byte for byte.
 */
export function openRawPty(): Pty {
  const l = lib();
  const master = l.posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  check(master, "open a pty (posix_openpt)");
  try {
    check(l.grantpt(master), "grant the pty (grantpt)");
    check(l.unlockpt(master), "unlock the pty (unlockpt)");
    const name = new Uint8Array(256);
    const r = l.ptsname_r(master, name, BigInt(name.byteLength));
    if (r !== 0) throw new DeviceError(`Cannot name the pty (ptsname_r): ${errnoName(r)}`, r);
    const slavePath = new TextDecoder().decode(name.subarray(0, name.indexOf(0)));
    const termios = new Uint8Array(TERMIOS_BYTES);
    check(l.tcgetattr(master, termios), "read the pty's terminal settings (tcgetattr)");
    l.cfmakeraw(termios);
    check(l.tcsetattr(master, TCSANOW, termios), "set the pty to raw mode (tcsetattr)");
    return { masterFd: master, slavePath };
  } catch (e) {
    l.close(master);
    throw e;
  }
}

/** Makes further opens of the tty fail with `EBUSY` (for callers without CAP_SYS_ADMIN). */
export function setTtyExclusive(fd: number): void {
  check(lib().ioctl(fd, BigInt(TIOCEXCL), 0n), "make the tty exclusive (TIOCEXCL)");
}

const PRIO_PROCESS = 0;

/**
 * Raises the calling thread's scheduling priority (Linux nice values are per thread) to `nice`
 * (negative = more CPU when contended). The threads that answer the kernel use it so that busy
 * processes on the host cannot starve an answer past its deadline. Needs root (CAP_SYS_NICE);
 * returns the errno name when refused, undefined when done. Never throws.
 */
export function raiseThreadPriority(nice: number): string | undefined {
  try {
    const l = Deno.dlopen("libc.so.6", {
      gettid: { parameters: [], result: "i32" },
      setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
    });
    try {
      const tid = l.symbols.gettid();
      if (l.symbols.setpriority(PRIO_PROCESS, tid, nice) === 0) return undefined;
      return errnoName(errno());
    } finally {
      l.close();
    }
  } catch (e) {
    return (e as Error).message;
  }
}
