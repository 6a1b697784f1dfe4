/**
 * The SPIFFE Workload API (`SpiffeWorkloadAPI/FetchX509SVID`, a server stream on the SPIRE
 * agent's Unix socket): the agent's own X509-SVID, its trust domain's bundle and the federated
 * bundles, kept current by the stream (the SPIRE agent pushes a new message on every rotation).
 * The watcher reconnects with backoff when the stream breaks.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import { GrpcUnixClient } from "../../sdk/grpc.ts";
import { bytes, bytesList, bytesMap, decodeFields, str } from "../../sdk/proto.ts";
import { splitDerSequence } from "../../sdk/ca_chain.ts";

const FETCH_X509_SVID = "/SpiffeWorkloadAPI/FetchX509SVID";
/** The header the Workload API requires on every call. */
const SECURITY_HEADER = { "workload.spiffe.io": "true" };

/** One X509-SVID. */
export interface X509Svid {
  spiffeId: string;
  /** The SVID first, then its intermediates (DER). */
  chain: Uint8Array[];
  /** PKCS#8 DER. */
  key: Uint8Array;
  /** The SVID's trust domain bundle (DER roots). */
  bundle: Uint8Array[];
}

/** One message of the stream. */
export interface X509SvidUpdate {
  svids: X509Svid[];
  /** Trust domain (`spiffe://td`) → DER roots. */
  federatedBundles: Record<string, Uint8Array[]>;
}

/** Decodes an `X509SVIDResponse`. */
export function decodeX509SvidResponse(message: Uint8Array): X509SvidUpdate {
  const f = decodeFields(message);
  const svids = bytesList(f, 1).map((raw) => {
    const s = decodeFields(raw);
    return {
      spiffeId: str(s, 1),
      chain: splitDerSequence(bytes(s, 2)),
      key: bytes(s, 3),
      bundle: splitDerSequence(bytes(s, 4)),
    };
  });
  const federatedBundles: Record<string, Uint8Array[]> = Object.create(null);
  for (const [td, der] of Object.entries(bytesMap(f, 3))) {
    federatedBundles[td] = splitDerSequence(der);
  }
  return { svids, federatedBundles };
}

/** Options for {@linkcode WorkloadWatcher}. */
export interface WorkloadWatcherOptions {
  /** `unix:///path` or `/path`. */
  socket: string;
  log: Logger;
  /** Called for each update after the first. */
  onUpdate(update: X509SvidUpdate): void;
  /** First reconnect delay (default 500 ms), doubling to 30 s. */
  retryBaseMs?: number;
}

/** Keeps a `FetchX509SVID` stream open. */
export class WorkloadWatcher {
  readonly socket: string;
  #o: WorkloadWatcherOptions;
  #client: GrpcUnixClient;
  #ac = new AbortController();
  #loop: Promise<void> | undefined;
  #latest: X509SvidUpdate | undefined;
  #first: PromiseWithResolvers<X509SvidUpdate> = Promise.withResolvers();
  #lastError: string | undefined;

  constructor(options: WorkloadWatcherOptions) {
    this.#o = options;
    this.socket = options.socket;
    this.#client = new GrpcUnixClient(options.socket);
    this.#first.promise.catch(() => {});
  }

  /** The latest update, if any came. */
  get latest(): X509SvidUpdate | undefined {
    return this.#latest;
  }

  /** Why the stream last failed. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Starts the stream and waits for the first update (or throws after `timeoutMs`). */
  async start(timeoutMs: number): Promise<X509SvidUpdate> {
    this.#loop ??= this.#run();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `Cannot get an X509-SVID from the Workload API at ${this.socket} within ${timeoutMs} ms${
                this.#lastError ? `: ${this.#lastError}` : ""
              } (is a registration entry for the agent's process there?)`,
            ),
          ),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.#first.promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #run(): Promise<void> {
    const signal = this.#ac.signal;
    let failures = 0;
    while (!signal.aborted) {
      try {
        for await (
          const m of this.#client.serverStream(
            FETCH_X509_SVID,
            new Uint8Array(),
            signal,
            SECURITY_HEADER,
          )
        ) {
          const update = decodeX509SvidResponse(m);
          if (update.svids.length === 0) continue;
          failures = 0;
          const first = this.#latest === undefined;
          this.#latest = update;
          this.#lastError = undefined;
          if (first) this.#first.resolve(update);
          else this.#o.onUpdate(update);
        }
        if (signal.aborted) return;
        this.#lastError = "the stream ended";
      } catch (e) {
        if (signal.aborted) return;
        this.#lastError = (e as Error).message;
      }
      failures++;
      if (this.#latest !== undefined) {
        this.#o.log.warn("The Workload API stream broke; reconnecting", {
          socket: this.socket,
          error: this.#lastError,
        });
      }
      const delay = Math.min(
        30_000,
        (this.#o.retryBaseMs ?? 500) * 2 ** Math.min(failures - 1, 10),
      );
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          signal.removeEventListener("abort", done);
          resolve();
        };
        const t = setTimeout(done, delay);
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  /** Ends the stream. */
  async close(): Promise<void> {
    this.#ac.abort();
    await this.#loop;
    await this.#client.close();
  }
}
