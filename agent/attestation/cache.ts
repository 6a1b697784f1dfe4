/**
 * The attestation cache. An entry belongs to one process life: the key is pid + start time +
 * cgroup path, so a reused pid never sees another process' labels (the Go agent keyed by
 * cgroup/uid/gid/comm/exe and served one process' pid and cmdline to another). The entry also
 * remembers the task's uid, gid, comm, exe and mount namespace: when the kernel reports
 * different ones (exec, setuid) the entry is stale. Exited processes are swept out.
 *
 * @module
 */
import type { Labels, TaskContext } from "../../plugins/types.ts";

/** A cached answer. */
export interface CacheEntry {
  labels: Labels;
  /** Warnings produced when the labels were collected (late or failed collectors). */
  warnings: string[];
  /** False when some collector had not answered; such entries live shorter. */
  complete: boolean;
  fingerprint: string;
  pid: number;
  startTime: number;
  expiresAt: number;
}

/** Cache key of a process life. */
export function cacheKey(pid: number, startTime: number, cgroupPath: string): string {
  return `${pid}:${startTime}:${cgroupPath}`;
}

/** The task facts that, when they change, invalidate an entry. */
export function taskFingerprint(task: TaskContext): string {
  return [task.uid, task.gid, task.command_name, task.command_path, task.namespace_ids?.mnt ?? 0]
    .join("\0");
}

/** A bounded map of entries, oldest evicted first. */
export class AttestationCache {
  readonly #entries = new Map<string, CacheEntry>();
  readonly #max: number;

  constructor(maxEntries = 16_384) {
    this.#max = maxEntries;
  }

  /** The live entry for `key` matching `fingerprint` at time `now`, if any. */
  get(key: string, fingerprint: string, now: number): CacheEntry | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.fingerprint !== fingerprint || e.expiresAt <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    return e;
  }

  /** Stores an entry, evicting the oldest beyond the bound. */
  set(key: string, entry: CacheEntry): void {
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    while (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value!);
  }

  /** Drops the entry for `key`. */
  delete(key: string): void {
    this.#entries.delete(key);
  }

  /**
   * Drops entries whose process is gone or was replaced: `startTimeOf(pid)` resolves the current
   * start time or `undefined`. Returns how many were dropped.
   */
  async sweep(
    startTimeOf: (pid: number) => Promise<number | undefined>,
    now: number,
  ): Promise<number> {
    const byPid = new Map<number, number | undefined>();
    let dropped = 0;
    for (const [key, e] of [...this.#entries]) {
      if (!byPid.has(e.pid)) byPid.set(e.pid, await startTimeOf(e.pid));
      if (byPid.get(e.pid) !== e.startTime || e.expiresAt <= now) {
        this.#entries.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  /** Drops every entry (benchmarks, tests). */
  clear(): void {
    this.#entries.clear();
  }

  /** Number of entries. */
  get size(): number {
    return this.#entries.size;
  }

  /** Pids with an entry (tests). */
  pids(): number[] {
    return [...new Set([...this.#entries.values()].map((e) => e.pid))];
  }
}
