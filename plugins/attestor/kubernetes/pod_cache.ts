/**
 * The kubelet's pod list, cached: served from memory, refreshed in the background when older than
 * `refreshMs`, and fetched again at once (at most every `minRefreshMs`) when a pod or container
 * is not in it yet — a new pod must not wait a refresh period, and a burst of misses must not
 * hammer the kubelet. A failed refresh keeps the last good list. (The Go agent fetched `/pods`
 * on every request.)
 *
 * @module
 */
import type { Clock } from "../../types.ts";
import type { Pod } from "./pod_labels.ts";

/** Options of {@linkcode PodCache}. */
export interface PodCacheOptions {
  refreshMs: number;
  minRefreshMs: number;
  clock: Clock;
  onError?: (e: unknown) => void;
}

/** See the module doc. */
export class PodCache {
  readonly #fetch: (signal: AbortSignal) => Promise<Pod[]>;
  readonly #opts: PodCacheOptions;
  #byUid = new Map<string, Pod>();
  #fetchedAt = -Infinity;
  #attemptedAt = -Infinity;
  #inflight: Promise<void> | undefined;
  #loaded = false;
  readonly #stop = new AbortController();
  /** Number of `/pods` fetches (tests, metrics). */
  fetches = 0;

  constructor(fetchPods: (signal: AbortSignal) => Promise<Pod[]>, options: PodCacheOptions) {
    this.#fetch = fetchPods;
    this.#opts = options;
  }

  /** Fetches now unless a fetch is running (then joins it). */
  refresh(): Promise<void> {
    this.#inflight ??= (async () => {
      this.#attemptedAt = this.#opts.clock.now();
      this.fetches++;
      try {
        const pods = await this.#fetch(this.#stop.signal);
        this.#byUid = new Map(pods.map((p) => [p.metadata.uid, p]));
        this.#fetchedAt = this.#opts.clock.now();
        this.#loaded = true;
      } catch (e) {
        this.#opts.onError?.(e);
        if (!this.#loaded) throw e;
      } finally {
        this.#inflight = undefined;
      }
    })();
    return this.#inflight;
  }

  /**
   * The pod with `uid`; `accept` tells whether the cached pod is good enough (e.g. it lists the
   * container) — if not, one early refresh is tried.
   */
  async find(
    uid: string,
    signal: AbortSignal,
    accept: (p: Pod) => boolean = () => true,
  ): Promise<Pod | undefined> {
    const now = this.#opts.clock.now();
    if (!this.#loaded) await abortable(this.refresh(), signal);
    else if (now - this.#fetchedAt >= this.#opts.refreshMs) void this.refresh().catch(() => {});
    let pod = this.#byUid.get(uid);
    if ((!pod || !accept(pod)) && now - this.#attemptedAt >= this.#opts.minRefreshMs) {
      await abortable(this.refresh(), signal);
      pod = this.#byUid.get(uid) ?? pod;
    } else if ((!pod || !accept(pod)) && this.#inflight) {
      await abortable(this.#inflight, signal);
      pod = this.#byUid.get(uid) ?? pod;
    }
    return pod;
  }

  /** Aborts a running fetch. */
  dispose(): void {
    this.#stop.abort(new Error("pod cache disposed"));
  }
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
