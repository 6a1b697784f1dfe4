/**
 * A loaded BPF object (libbpf `bpf_object`), its maps and its attachment links. Loading needs
 * root (CAP_BPF + CAP_NET_ADMIN); links die with the process, so a killed agent leaves nothing
 * attached.
 *
 * @module
 */
import { attachProgram, programsOf } from "./guard_ffi.ts";
import { bpf, BpfError, checkPtr, checkRc, cstr } from "./libbpf.ts";

const ENOENT = 2;

/** One BPF map by fd: fixed-size keys and values as little-endian byte arrays. */
export class BpfMap {
  readonly name: string;
  readonly fd: number;
  readonly keySize: number;
  readonly valueSize: number;

  constructor(name: string, fd: number, keySize: number, valueSize: number) {
    this.name = name;
    this.fd = fd;
    this.keySize = keySize;
    this.valueSize = valueSize;
  }

  #check(bytes: Uint8Array, size: number, what: string): void {
    if (bytes.length !== size) {
      throw new RangeError(
        `Cannot use a ${bytes.length}-byte ${what} on map "${this.name}": ` +
          `it takes ${size} bytes`,
      );
    }
  }

  /** Inserts or replaces `key`. */
  update(key: Uint8Array<ArrayBuffer>, value: Uint8Array<ArrayBuffer>): void {
    this.#check(key, this.keySize, "key");
    this.#check(value, this.valueSize, "value");
    checkRc(bpf().bpf_map_update_elem(this.fd, key, value, 0n), `update map "${this.name}"`);
  }

  /** The value of `key`, or `undefined` when absent. */
  lookup(key: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> | undefined {
    this.#check(key, this.keySize, "key");
    const out = new Uint8Array(this.valueSize);
    const rc = bpf().bpf_map_lookup_elem(this.fd, key, out);
    if (rc === -ENOENT) return undefined;
    checkRc(rc, `look up in map "${this.name}"`);
    return out;
  }

  /** Deletes `key`; returns false when it was absent. */
  delete(key: Uint8Array<ArrayBuffer>): boolean {
    this.#check(key, this.keySize, "key");
    const rc = bpf().bpf_map_delete_elem(this.fd, key);
    if (rc === -ENOENT) return false;
    checkRc(rc, `delete from map "${this.name}"`);
    return true;
  }

  /** Every key (a snapshot; a concurrent delete may end the walk early). */
  keys(): Uint8Array<ArrayBuffer>[] {
    const out: Uint8Array<ArrayBuffer>[] = [];
    let prev: Uint8Array<ArrayBuffer> | null = null;
    for (;;) {
      const next = new Uint8Array(this.keySize);
      // A NULL key asks for the first one; FFI "buffer" accepts null.
      const rc = bpf().bpf_map_get_next_key(this.fd, prev, next);
      if (rc === -ENOENT) return out;
      checkRc(rc, `list keys of map "${this.name}"`);
      out.push(next);
      prev = next;
    }
  }
}

/** A BPF object loaded from an in-memory ELF image. */
export class BpfObject {
  #obj: Deno.PointerObject | null;
  // libbpf reads the ELF image lazily: keep it alive as long as the object.
  #image: Uint8Array<ArrayBuffer>;
  #links = new Map<string, Deno.PointerObject>();
  #pinned = new Set<string>();

  private constructor(obj: Deno.PointerObject, image: Uint8Array<ArrayBuffer>) {
    this.#obj = obj;
    this.#image = image;
  }

  /**
   * Opens and loads (verifies) every program of `image`; `needs` names the privileges a failed
   * load is most likely missing.
   */
  static load(
    image: Uint8Array,
    what = "BPF object",
    needs = "CAP_BPF and CAP_NET_ADMIN",
  ): BpfObject {
    const copy = new Uint8Array(image);
    const obj = checkPtr(
      bpf().bpf_object__open_mem(copy, BigInt(copy.length), null),
      `open the ${what}`,
    );
    const rc = bpf().bpf_object__load(obj);
    if (rc < 0) {
      bpf().bpf_object__close(obj);
      throw new BpfError(
        `load the ${what} (needs root: ${needs}; the verifier log is on stderr)`,
        -rc,
      );
    }
    return new BpfObject(obj, copy);
  }

  #object(): Deno.PointerObject {
    if (!this.#obj) throw new Error("Cannot use a closed BPF object");
    return this.#obj;
  }

  /** The map `name` with its key and value sizes as the C source declares them. */
  map(name: string, keySize: number, valueSize: number): BpfMap {
    const m = checkPtr(
      bpf().bpf_object__find_map_by_name(this.#object(), cstr(name)),
      `find map "${name}"`,
    );
    return new BpfMap(
      name,
      checkRc(bpf().bpf_map__fd(m), `get the fd of map "${name}"`),
      keySize,
      valueSize,
    );
  }

  #program(name: string): Deno.PointerObject {
    return checkPtr(
      bpf().bpf_object__find_program_by_name(this.#object(), cstr(name)),
      `find program "${name}"`,
    );
  }

  /** Attaches program `name` to the cgroup v2 directory open as `cgroupFd` (a multi link). */
  attachCgroup(name: string, cgroupFd: number): void {
    this.#attach(
      name,
      () => bpf().bpf_program__attach_cgroup(this.#program(name), cgroupFd),
      "cgroup",
    );
  }

  /** Attaches program `name` (sk_lookup) to the network namespace open as `netnsFd`. */
  attachNetns(name: string, netnsFd: number): void {
    this.#attach(
      name,
      () => bpf().bpf_program__attach_netns(this.#program(name), netnsFd),
      "netns",
    );
  }

  /** Attaches every program not attached yet where its section says (tracepoints, lsm/…). */
  attachAll(): void {
    for (const [name, prog] of programsOf(this.#object())) {
      if (!this.#links.has(name)) this.#links.set(name, attachProgram(prog, name));
    }
  }

  #attach(name: string, attach: () => Deno.PointerValue, where: string): void {
    if (this.#links.has(name)) throw new Error(`Cannot attach program "${name}": already attached`);
    this.#links.set(name, checkPtr(attach(), `attach program "${name}" to the ${where}`));
  }

  /** Names of the attached programs. */
  get attached(): string[] {
    return [...this.#links.keys()];
  }

  /**
   * Pins the link of program `name` at `path` (on a bpf filesystem): it then stays attached
   * after this process exits, until {@linkcode removePinnedLink} or a reboot.
   */
  pin(name: string, path: string): void {
    const link = this.#links.get(name);
    if (!link) throw new Error(`Cannot pin program "${name}": not attached`);
    checkRc(bpf().bpf_link__pin(link, cstr(path)), `pin program "${name}" at "${path}"`);
    this.#pinned.add(name);
  }

  /**
   * Detaches every program (new connections are no longer steered). With `keepPinned`, pinned
   * links stay attached in the kernel (fail-closed after exit). Idempotent.
   */
  detachAll(keepPinned = false): void {
    for (const [name, link] of [...this.#links].reverse()) {
      if (this.#pinned.has(name) && !keepPinned) bpf().bpf_link__unpin(link);
      bpf().bpf_link__destroy(link);
      this.#links.delete(name);
    }
    this.#pinned.clear();
  }

  /** Detaches (see {@linkcode detachAll}) and frees the object. Idempotent. */
  close(keepPinned = false): void {
    if (!this.#obj) return;
    this.detachAll(keepPinned);
    bpf().bpf_object__close(this.#obj);
    this.#obj = null;
    this.#image = new Uint8Array(0);
  }
}

/** Detaches and removes a link pinned at `path`; returns false when there is none. */
export function removePinnedLink(path: string): boolean {
  const link = bpf().bpf_link__open(cstr(path));
  if (link === null) return false;
  bpf().bpf_link__unpin(link);
  bpf().bpf_link__destroy(link);
  return true;
}
