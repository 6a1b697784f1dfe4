/**
 * An HTTP webhook sink for audit records: a bounded queue (the oldest dropped and counted when
 * full), POSTed in batches as JSON lines (`application/x-ndjson`), retried with backoff. The sink
 * function only queues, so capture and judging never wait for the network.
 *
 * @module
 */
import type { AuditRecord, AuditSink } from "./engine.ts";

/** Options of {@linkcode WebhookSink}. */
export interface WebhookOptions {
  /** Records queued at most (default 10000). */
  queueMax?: number;
  /** Records per POST (default 500). */
  batch?: number;
  /** Attempts per batch before it is dropped (default 5). */
  attempts?: number;
  /** First retry delay, ms, doubled each time (default 200). */
  backoffMs?: number;
  /** Per-request timeout, ms (default 5000). */
  timeoutMs?: number;
}

/** POSTs records to `url`. */
export class WebhookSink {
  readonly url: string;
  #o: Required<WebhookOptions>;
  #queue: string[] = [];
  #running: Promise<void> | undefined;
  #closed = false;
  /** Records dropped: queue full, or a batch that failed every attempt. */
  dropped = 0;
  /** Records delivered (2xx). */
  delivered = 0;
  /** The last delivery error, for status. */
  lastError = "";

  constructor(url: string, options: WebhookOptions = {}) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new TypeError(`Cannot use audit webhook "${url}": not a URL`);
    }
    if (u.protocol !== "https:" && u.protocol !== "http:") {
      throw new TypeError(`Cannot use audit webhook "${url}": only http and https are supported`);
    }
    this.url = url;
    this.#o = {
      queueMax: options.queueMax ?? 10_000,
      batch: options.batch ?? 500,
      attempts: options.attempts ?? 5,
      backoffMs: options.backoffMs ?? 200,
      timeoutMs: options.timeoutMs ?? 5000,
    };
  }

  /** Queues one record; never blocks. */
  push(r: AuditRecord): void {
    if (this.#closed) return;
    this.#queue.push(JSON.stringify(r));
    if (this.#queue.length > this.#o.queueMax) {
      this.#queue.shift();
      this.dropped++;
    }
    this.#running ??= this.#pump().finally(() => {
      this.#running = undefined;
    });
  }

  /** The sink function for {@linkcode AuditEngine}. */
  get sink(): AuditSink {
    return (r) => this.push(r);
  }

  async #post(body: string): Promise<void> {
    const res = await fetch(this.url, {
      method: "POST",
      headers: { "content-type": "application/x-ndjson" },
      body,
      signal: AbortSignal.timeout(this.#o.timeoutMs),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
  }

  async #pump(): Promise<void> {
    while (this.#queue.length) {
      const batch = this.#queue.splice(0, this.#o.batch);
      const body = batch.join("\n") + "\n";
      let ok = false;
      for (let a = 0; a < this.#o.attempts && !ok; a++) {
        if (a > 0) await new Promise((r) => setTimeout(r, this.#o.backoffMs * 2 ** (a - 1)));
        try {
          await this.#post(body);
          ok = true;
        } catch (e) {
          this.lastError = `POST ${this.url}: ${(e as Error).message}`;
        }
      }
      if (ok) this.delivered += batch.length;
      else this.dropped += batch.length;
    }
  }

  /** Waits for the queue to drain (or to be dropped), then refuses new records. */
  async close(): Promise<void> {
    await this.#running;
    this.#closed = true;
  }
}
