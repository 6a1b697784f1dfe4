/**
 * A loopback TCP proxy for fault tests: forwards to a real server (Vault, the SPIRE server) and can
 * delay every chunk in either direction, hold connections silently (a hung server), or refuse new
 * connections. It also counts connections and can record what clients sent (to check headers).
 *
 * @module
 */

/** Options for {@linkcode DelayProxy.start}. */
export interface DelayProxyOptions {
  /** Where to forward. */
  target: { hostname: string; port: number };
  /** Delay per chunk, ms (default 0). */
  delayMs?: number;
  /** Keep a copy of the bytes clients send (default false). */
  record?: boolean;
}

interface Pair {
  client: Deno.Conn;
  upstream: Deno.Conn | undefined;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A running proxy; close it with {@linkcode DelayProxy.close}. */
export class DelayProxy {
  readonly port: number;
  /** Current delay per chunk, ms; change it at any time. */
  delayMs: number;
  /** Connections accepted so far. */
  connections = 0;
  #listener: Deno.Listener;
  #target: DelayProxyOptions["target"];
  #pairs = new Set<Pair>();
  #tasks = new Set<Promise<void>>();
  #refuse = false;
  #record: boolean;
  #recorded: Uint8Array[] = [];

  private constructor(listener: Deno.Listener, o: DelayProxyOptions) {
    this.#listener = listener;
    this.port = (listener.addr as Deno.NetAddr).port;
    this.#target = o.target;
    this.delayMs = o.delayMs ?? 0;
    this.#record = o.record ?? false;
  }

  /** Listens on a free loopback port. */
  static start(options: DelayProxyOptions): DelayProxy {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const proxy = new DelayProxy(listener, options);
    proxy.#track(proxy.#accept());
    return proxy;
  }

  /** `http://127.0.0.1:<port>` */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** `127.0.0.1:<port>` */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Everything clients sent so far (when recording), as text. */
  recordedText(): string {
    const dec = new TextDecoder();
    return this.#recorded.map((c) => dec.decode(c)).join("");
  }

  /** Refuse (close at once) new connections and drop open ones: a server that went away. */
  refuse(on = true): void {
    this.#refuse = on;
    if (on) this.dropAll();
  }

  /** Closes every open connection. */
  dropAll(): void {
    for (const p of this.#pairs) this.#closePair(p);
  }

  #track(p: Promise<void>): void {
    this.#tasks.add(p);
    p.finally(() => this.#tasks.delete(p));
  }

  async #accept(): Promise<void> {
    for await (const client of this.#listener) {
      this.connections++;
      if (this.#refuse) {
        client.close();
        continue;
      }
      const pair: Pair = { client, upstream: undefined };
      this.#pairs.add(pair);
      this.#track(this.#serve(pair));
    }
  }

  async #serve(pair: Pair): Promise<void> {
    try {
      pair.upstream = await Deno.connect({ ...this.#target, transport: "tcp" });
    } catch {
      this.#closePair(pair);
      return;
    }
    await Promise.all([
      this.#pipe(pair.client, pair.upstream, pair, true),
      this.#pipe(pair.upstream, pair.client, pair, false),
    ]);
    this.#closePair(pair);
  }

  async #pipe(from: Deno.Conn, to: Deno.Conn, pair: Pair, fromClient: boolean): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await from.read(buf);
        if (n === null) break;
        const chunk = buf.slice(0, n);
        if (fromClient && this.#record) this.#recorded.push(chunk);
        if (this.delayMs > 0) await sleep(this.delayMs);
        if (!this.#pairs.has(pair)) break;
        let off = 0;
        while (off < chunk.length) off += await to.write(chunk.subarray(off));
      }
    } catch { /* closed */ }
    this.#closePair(pair);
  }

  #closePair(pair: Pair): void {
    if (!this.#pairs.delete(pair)) return;
    for (const c of [pair.client, pair.upstream]) {
      try {
        c?.close();
      } catch { /* already closed */ }
    }
  }

  /** Stops listening, closes every connection and waits for the pipes to end. */
  async close(): Promise<void> {
    try {
      this.#listener.close();
    } catch { /* closed */ }
    this.dropAll();
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }
}
