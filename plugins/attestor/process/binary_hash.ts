/**
 * SHA-256 of a process' executable read through `/proc/<pid>/exe`: the kernel resolves the link
 * to the file the process actually runs, in whatever mount namespace, even when it was deleted or
 * replaced on disk. Results are cached by the file's device, inode, size and mtime, so a binary
 * that many processes run is read once.
 *
 * @module
 */
import { createHash } from "node:crypto";

interface Entry {
  hash: string;
}

/** Identity of a file version: device, inode, size, mtime. */
export function fileKey(info: Deno.FileInfo): string {
  return `${info.dev}:${info.ino}:${info.size}:${info.mtime?.getTime() ?? 0}`;
}

/**
 * A bounded cache of binary hashes with single-flight reads.
 *
 * @example
 * ```ts ignore
 * import { BinaryHasher } from "./binary_hash.ts";
 * const hasher = new BinaryHasher();
 * await hasher.hashOf(Deno.pid); // "sha256:…"
 * ```
 */
export class BinaryHasher {
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<string>>();
  readonly #max: number;
  /** Files actually read (for tests and metrics). */
  reads = 0;

  constructor(maxEntries = 4096) {
    this.#max = maxEntries;
  }

  /**
   * `sha256:<hex>` of the executable of `pid`, or `undefined` when the process is gone or the
   * file cannot be read. `signal` stops a long read.
   */
  async hashOf(pid: number, signal?: AbortSignal, procRoot = "/proc"): Promise<string | undefined> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(`${procRoot}/${pid}/exe`, { read: true });
    } catch {
      return undefined;
    }
    try {
      const key = fileKey(await file.stat());
      const hit = this.#entries.get(key);
      if (hit) {
        this.#entries.delete(key);
        this.#entries.set(key, hit);
        return hit.hash;
      }
      let pending = this.#inflight.get(key);
      if (!pending) {
        pending = this.#read(file, signal).finally(() => this.#inflight.delete(key));
        this.#inflight.set(key, pending);
        const hash = await pending;
        this.#remember(key, hash);
        return hash;
      }
      return await pending;
    } catch (e) {
      if (signal?.aborted) throw e;
      return undefined;
    } finally {
      file.close();
    }
  }

  async #read(file: Deno.FsFile, signal?: AbortSignal): Promise<string> {
    this.reads++;
    const h = createHash("sha256");
    const buf = new Uint8Array(1 << 20);
    for (;;) {
      signal?.throwIfAborted();
      const n = await file.read(buf);
      if (n === null) break;
      h.update(buf.subarray(0, n));
    }
    return `sha256:${h.digest("hex")}`;
  }

  #remember(key: string, hash: string) {
    this.#entries.set(key, { hash });
    if (this.#entries.size > this.#max) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }

  /** Number of cached hashes. */
  get size(): number {
    return this.#entries.size;
  }
}
