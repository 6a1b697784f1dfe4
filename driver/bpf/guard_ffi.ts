/**
 * The FFI calls of the runtime guard beyond the steering layer's ({@linkcode ./libbpf.ts}):
 * generic program attach (LSM), program iteration, the BPF ring buffer and pidfds (task storage
 * is keyed by pidfd from user space). A separate file so the steering layer's symbol table stays
 * as it is; both open the same libbpf.so.1.
 *
 * @module
 */
import { BpfError, checkPtr, cstr, errno } from "./libbpf.ts";

/**
 * The runtime guard cannot work on this host (no libbpf, no BPF LSM, load refused). Its own
 * class so the agent tells "not possible here" apart from a bug.
 */
export class GuardCapabilityError extends Error {
  override name = "GuardCapabilityError";
}

const GUARD_LIBBPF = {
  bpf_object__open_mem: { parameters: ["buffer", "usize", "pointer"], result: "pointer" },
  bpf_object__load: { parameters: ["pointer"], result: "i32" },
  bpf_object__close: { parameters: ["pointer"], result: "void" },
  bpf_object__find_map_by_name: { parameters: ["pointer", "buffer"], result: "pointer" },
  bpf_object__next_program: { parameters: ["pointer", "pointer"], result: "pointer" },
  bpf_program__name: { parameters: ["pointer"], result: "pointer" },
  bpf_program__attach: { parameters: ["pointer"], result: "pointer" },
  bpf_map__fd: { parameters: ["pointer"], result: "i32" },
  bpf_link__destroy: { parameters: ["pointer"], result: "i32" },
  bpf_link__pin: { parameters: ["pointer", "buffer"], result: "i32" },
  bpf_link__unpin: { parameters: ["pointer"], result: "i32" },
  bpf_obj_pin: { parameters: ["i32", "buffer"], result: "i32" },
  libbpf_get_error: { parameters: ["pointer"], result: "i64" },
  ring_buffer__new: {
    parameters: ["i32", "function", "pointer", "pointer"],
    result: "pointer",
  },
  ring_buffer__consume: { parameters: ["pointer"], result: "i32" },
  ring_buffer__free: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

const GUARD_LIBC = {
  syscall: { parameters: ["i64", "i64", "i64"], result: "i64" },
} as const satisfies Deno.ForeignLibraryInterface;

type GuardLibbpf = Deno.DynamicLibrary<typeof GUARD_LIBBPF>["symbols"];

let lib: GuardLibbpf | undefined;
let libc: Deno.DynamicLibrary<typeof GUARD_LIBC>["symbols"] | undefined;

/** libbpf's symbols the guard needs; throws {@linkcode GuardCapabilityError} naming the package. */
export function guardBpf(): GuardLibbpf {
  if (lib) return lib;
  try {
    lib = Deno.dlopen("libbpf.so.1", GUARD_LIBBPF).symbols;
  } catch (e) {
    throw new GuardCapabilityError(
      `Cannot load libbpf.so.1 for the runtime guard: ${(e as Error).message}; ` +
        `install the Debian package libbpf1 (apt-get install libbpf1)`,
      { cause: e },
    );
  }
  return lib;
}

const SYS_PIDFD_OPEN = 434n; // same number on x86_64 and aarch64

/** `pidfd_open(pid, 0)`: the key task storage maps take from user space. Close with `closeFd`. */
export function pidfdOpen(pid: number): number {
  libc ??= Deno.dlopen("libc.so.6", GUARD_LIBC).symbols;
  const fd = Number(libc.syscall(SYS_PIDFD_OPEN, BigInt(pid), 0n));
  if (fd < 0) throw new BpfError(`open a pidfd for pid ${pid}`, errno());
  return fd;
}

/** Names and pointers of every program in a libbpf object, in ELF order. */
export function programsOf(obj: Deno.PointerObject): Map<string, Deno.PointerObject> {
  const out = new Map<string, Deno.PointerObject>();
  let p: Deno.PointerValue = null;
  for (;;) {
    p = guardBpf().bpf_object__next_program(obj, p);
    if (p === null) return out;
    out.set(Deno.UnsafePointerView.getCString(guardBpf().bpf_program__name(p)!), p);
  }
}

/** `bpf_program__attach`: the attach point comes from the program's section (lsm/…). */
export function attachProgram(prog: Deno.PointerObject, name: string): Deno.PointerObject {
  const link = guardBpf().bpf_program__attach(prog);
  if (link === null) throw new BpfError(`attach program "${name}"`, errno() || 22);
  return link;
}

/** What the sample callback returns to end ring_buffer__consume early (-ECANCELED). */
const STOP = -125;

/** A sample as the ring buffer hands it over: a copy, valid after the callback returns. */
export type RingSample = Uint8Array<ArrayBuffer>;

/**
 * A libbpf ring buffer over the map `fd`. {@linkcode consume} drains what is ready without
 * blocking (ring_buffer__consume), so a timer on the main thread can call it; the callback runs
 * synchronously inside that call.
 */
export class RingBuffer {
  #rb: Deno.PointerObject | null;
  #cb: Deno.UnsafeCallback<{ parameters: ["pointer", "pointer", "usize"]; result: "i32" }>;

  #delivered = 0;

  /**
   * `onSample` returning `false` ends the current {@linkcode consume} after this sample (it is
   * delivered): the rest stays in the ring for the next call.
   */
  constructor(fd: number, onSample: (sample: RingSample) => unknown) {
    this.#cb = new Deno.UnsafeCallback(
      { parameters: ["pointer", "pointer", "usize"], result: "i32" } as const,
      (_ctx, data, size) => {
        if (data === null) return 0;
        const n = Number(size);
        const copy = new Uint8Array(n);
        copy.set(new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(data, n)));
        this.#delivered++;
        try {
          if (onSample(copy) === false) return STOP;
        } catch {
          // A throwing consumer must not unwind through C; the sample is dropped.
        }
        return 0;
      },
    );
    this.#rb = checkPtr(
      guardBpf().ring_buffer__new(fd, this.#cb.pointer, null, null),
      "create the ring buffer",
    );
  }

  /** Delivers every ready sample (or until the consumer says stop); returns how many. */
  consume(): number {
    if (!this.#rb) return 0;
    this.#delivered = 0;
    const n = guardBpf().ring_buffer__consume(this.#rb);
    if (n < 0 && n !== STOP) throw new BpfError("consume the ring buffer", -n);
    return this.#delivered;
  }

  /** Frees the ring buffer and its callback. Idempotent. */
  close(): void {
    if (!this.#rb) return;
    guardBpf().ring_buffer__free(this.#rb);
    this.#rb = null;
    this.#cb.close();
  }
}

/** `bpf_obj_pin(fd, path)`: pins a map so it outlives the agent (fail-closed). */
export function pinFd(fd: number, path: string): void {
  const rc = guardBpf().bpf_obj_pin(fd, cstr(path));
  if (rc < 0) throw new BpfError(`pin at "${path}"`, -rc);
}
