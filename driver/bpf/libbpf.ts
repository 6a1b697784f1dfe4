/**
 * The FFI file of the steering layer: libbpf.so.1 (Debian package `libbpf1`) plus the few libc
 * calls it needs (open a cgroup or netns fd, the netns cookie, getpid). libbpf 1.x conventions:
 * calls returning a pointer give NULL and set errno; calls returning int give `-errno`.
 *
 * Deno's own file API exposes no fds, and /proc reads need `--allow-all`, so the fds libbpf wants
 * come from libc `open()` here.
 *
 * @module
 */
import { CapabilityError } from "../errors.ts";

const LIBBPF = {
  bpf_object__open_mem: { parameters: ["buffer", "usize", "pointer"], result: "pointer" },
  bpf_object__load: { parameters: ["pointer"], result: "i32" },
  bpf_object__close: { parameters: ["pointer"], result: "void" },
  bpf_object__find_program_by_name: { parameters: ["pointer", "buffer"], result: "pointer" },
  bpf_object__find_map_by_name: { parameters: ["pointer", "buffer"], result: "pointer" },
  bpf_map__fd: { parameters: ["pointer"], result: "i32" },
  bpf_program__attach_cgroup: { parameters: ["pointer", "i32"], result: "pointer" },
  bpf_program__attach_netns: { parameters: ["pointer", "i32"], result: "pointer" },
  bpf_link__destroy: { parameters: ["pointer"], result: "i32" },
  bpf_link__pin: { parameters: ["pointer", "buffer"], result: "i32" },
  bpf_link__unpin: { parameters: ["pointer"], result: "i32" },
  bpf_link__open: { parameters: ["buffer"], result: "pointer" },
  bpf_link__disconnect: { parameters: ["pointer"], result: "void" },
  bpf_map_update_elem: { parameters: ["i32", "buffer", "buffer", "u64"], result: "i32" },
  bpf_map_lookup_elem: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  bpf_map_delete_elem: { parameters: ["i32", "buffer"], result: "i32" },
  bpf_map_get_next_key: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  libbpf_num_possible_cpus: { parameters: [], result: "i32" },
  libbpf_major_version: { parameters: [], result: "u32" },
  libbpf_minor_version: { parameters: [], result: "u32" },
} as const satisfies Deno.ForeignLibraryInterface;

const LIBC = {
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  getpid: { parameters: [], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  statfs: { parameters: ["buffer", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

type Libbpf = Deno.DynamicLibrary<typeof LIBBPF>["symbols"];
type Libc = Deno.DynamicLibrary<typeof LIBC>["symbols"];

let libbpf: Libbpf | undefined;
let libc: Libc | undefined;

/**
 * Opens libbpf from `path`; throws {@linkcode CapabilityError} naming the Debian package when it
 * cannot be loaded.
 */
export function loadLibbpf(path = "libbpf.so.1"): Libbpf {
  try {
    return Deno.dlopen(path, LIBBPF).symbols;
  } catch (e) {
    throw new CapabilityError(
      `Cannot load ${path} for the eBPF data plane: ${(e as Error).message}; ` +
        `install the Debian package libbpf1 (apt-get install libbpf1)`,
      { cause: e },
    );
  }
}

/** libbpf's symbols; opened on first use. Throws {@linkcode CapabilityError} when missing. */
export function bpf(): Libbpf {
  libbpf ??= loadLibbpf();
  return libbpf;
}

/** libc's symbols used by the steering layer. */
export function sys(): Libc {
  if (libc) return libc;
  libc = Deno.dlopen("libc.so.6", LIBC).symbols;
  return libc;
}

/** The calling thread's errno. */
export function errno(): number {
  return new Deno.UnsafePointerView(sys().__errno_location()!).getInt32();
}

/** `strerror(n)`, e.g. `Operation not permitted`. */
export function strerror(n: number): string {
  const p = sys().strerror(n);
  return p ? Deno.UnsafePointerView.getCString(p) : `errno ${n}`;
}

/** A failed libbpf or libc call; `errno` is positive. */
export class BpfError extends Error {
  override name = "BpfError";
  readonly errno: number;
  constructor(action: string, errnoValue: number) {
    super(`Cannot ${action}: ${strerror(errnoValue)} (errno ${errnoValue})`);
    this.errno = errnoValue;
  }
}

/** NUL-terminated UTF-8, as C wants strings. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s + "\0");
}

/** Returns `p`, or throws {@linkcode BpfError} with errno when it is NULL. */
export function checkPtr(p: Deno.PointerValue, action: string): Deno.PointerObject {
  if (p === null) throw new BpfError(action, errno() || 22);
  return p;
}

/** Returns `rc`, or throws {@linkcode BpfError} when it is a negative errno. */
export function checkRc(rc: number, action: string): number {
  if (rc < 0) throw new BpfError(action, -rc);
  return rc;
}

const O_RDONLY = 0;
const O_DIRECTORY = 0o200000;
const O_CLOEXEC = 0o2000000;

/** `open(path, O_RDONLY|O_CLOEXEC[|O_DIRECTORY])`: a raw fd for libbpf. Close with {@linkcode closeFd}. */
export function openFd(path: string, directory = false): number {
  const fd = sys().open(cstr(path), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0), 0);
  if (fd < 0) throw new BpfError(`open "${path}"`, errno());
  return fd;
}

/** Closes a raw fd from {@linkcode openFd}. */
export function closeFd(fd: number): void {
  sys().close(fd);
}

/** This process's id (the tgid the BPF programs see). */
export function getpid(): number {
  return sys().getpid();
}

const CGROUP2_SUPER_MAGIC = 0x63677270n;
const BPF_FS_MAGIC = 0xcafe4a11n;

function fsType(path: string): bigint | undefined {
  const buf = new Uint8Array(256); // struct statfs is 120 bytes on x86_64 and aarch64
  if (sys().statfs(cstr(path), buf) !== 0) return undefined;
  return new DataView(buf.buffer).getBigInt64(0, true);
}

/** True when `path` is in a mounted cgroup v2 hierarchy (statfs f_type). */
export function isCgroup2(path: string): boolean {
  return fsType(path) === CGROUP2_SUPER_MAGIC;
}

/** True when `path` is on a bpf filesystem (where links can be pinned). */
export function isBpffs(path: string): boolean {
  return fsType(path) === BPF_FS_MAGIC;
}

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_NETNS_COOKIE = 71;

/** The cookie of the calling thread's network namespace (SO_NETNS_COOKIE, Linux 5.14+). */
export function netnsCookie(): bigint {
  const fd = sys().socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new BpfError("create a socket to read the netns cookie", errno());
  try {
    const value = new Uint8Array(8);
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, 8, true);
    if (sys().getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, value, len) !== 0) {
      const e = errno();
      if (e === 92 /* ENOPROTOOPT */) {
        throw new CapabilityError(
          "Cannot read the network namespace cookie: SO_NETNS_COOKIE needs Linux 5.14 or later",
        );
      }
      throw new BpfError("read the netns cookie (SO_NETNS_COOKIE)", e);
    }
    return new DataView(value.buffer).getBigUint64(0, true);
  } finally {
    sys().close(fd);
  }
}

/** `libbpf 1.1`. */
export function libbpfVersion(): string {
  return `libbpf ${bpf().libbpf_major_version()}.${bpf().libbpf_minor_version()}`;
}
