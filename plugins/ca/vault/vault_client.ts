/**
 * A small client for Vault's HTTP API (OpenBao keeps the same API): JSON over `node:http(s)` with
 * kept-alive connections, TLS with a CA bundle and a client certificate, the namespace header, a
 * timeout per request and the caller's abort signal. Tokens travel only in the `X-Vault-Token`
 * header and never appear in an error message.
 *
 * @module
 */
import http from "node:http";
import https from "node:https";
import { Buffer } from "node:buffer";

/** Vault answered with a non-2xx status. */
export class VaultHttpError extends Error {
  override name = "VaultHttpError";
  constructor(message: string, readonly status: number, readonly errors: string[]) {
    super(message);
  }
}

/** Vault could not be reached, or did not answer in time. */
export class VaultUnreachableError extends Error {
  override name = "VaultUnreachableError";
}

/** TLS material, already read from files. */
export interface VaultTlsMaterial {
  /** PEM trust anchors for Vault's certificate (default: the system's). */
  ca?: string[];
  /** PEM client certificate chain and key (for the `cert` auth method, or mTLS listeners). */
  cert?: string;
  key?: string;
  serverName?: string;
  skipVerify?: boolean;
}

/** Options for {@linkcode VaultClient}. */
export interface VaultClientOptions {
  /** `https://vault.example:8200` */
  address: string;
  namespace?: string;
  tls?: VaultTlsMaterial;
}

/** Options of one request. */
export interface VaultRequestOptions {
  body?: unknown;
  signal?: AbortSignal;
  /** Give up after this long (the error says so). */
  timeoutMs: number;
  /** `null` sends no token (login); default: the client's current token. */
  token?: string | null;
  /** Read a list (`?list=true`). */
  list?: boolean;
}

/** A JSON body. */
export type VaultBody = Record<string, unknown>;

/** The Vault HTTP API client. Call {@linkcode VaultClient.close} when done. */
export class VaultClient {
  readonly address: string;
  readonly namespace: string | undefined;
  /** The token sent by default; the token keeper swaps it on renewal or login. */
  token: string | undefined;
  #url: URL;
  #agent: http.Agent;
  #https: boolean;

  constructor(options: VaultClientOptions) {
    this.address = options.address.replace(/\/+$/, "");
    this.namespace = options.namespace;
    this.#url = new URL(this.address);
    this.#https = this.#url.protocol === "https:";
    const t = options.tls ?? {};
    this.#agent = this.#https
      ? new https.Agent({
        keepAlive: true,
        maxSockets: 16,
        ...(t.ca ? { ca: t.ca } : {}),
        ...(t.cert ? { cert: t.cert } : {}),
        ...(t.key ? { key: t.key } : {}),
        ...(t.serverName ? { servername: t.serverName } : {}),
        rejectUnauthorized: !t.skipVerify,
      })
      : new http.Agent({ keepAlive: true, maxSockets: 16 });
  }

  /**
   * Calls `/v1/<path>` and resolves the JSON body (`{}` for 204). Rejects with
   * {@linkcode VaultHttpError} for a Vault error and {@linkcode VaultUnreachableError} when no
   * answer came (connection refused, TLS failure, timeout).
   */
  request(method: string, path: string, options: VaultRequestOptions): Promise<VaultBody> {
    const p = path.replace(/^\/+/, "");
    const what = `${method} ${p}`;
    return new Promise<VaultBody>((resolve, reject) => {
      const signal = options.signal;
      if (signal?.aborted) return reject(signal.reason);
      const headers: Record<string, string> = { "X-Vault-Request": "true" };
      const token = options.token === undefined ? this.token : options.token;
      if (token) headers["X-Vault-Token"] = token;
      if (this.namespace) headers["X-Vault-Namespace"] = this.namespace;
      let payload: Buffer | undefined;
      if (options.body !== undefined) {
        payload = Buffer.from(JSON.stringify(options.body));
        headers["Content-Type"] = "application/json";
        headers["Content-Length"] = String(payload.length);
      }
      const url = new URL(`${this.#url.pathname.replace(/\/+$/, "")}/v1/${p}`, this.#url);
      if (options.list) url.searchParams.set("list", "true");
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        fn();
      };
      const req = (this.#https ? https : http).request(url, {
        method,
        headers,
        agent: this.#agent,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (e) => finish(() => reject(this.#unreachable(what, e.message))));
        res.on("end", () =>
          finish(() => {
            const text = Buffer.concat(chunks).toString("utf8");
            let json: VaultBody = {};
            try {
              json = text === "" ? {} : JSON.parse(text) as VaultBody;
            } catch {
              json = { errors: [text.slice(0, 200)] };
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) return resolve(json);
            // Vault wraps several errors as "2 errors occurred:\n\t* a\n\t* b": keep one line.
            const errors = (Array.isArray(json.errors) ? json.errors.map(String) : []).map((m) =>
              m.replace(/^\d+ errors? occurred:\s*/, "").replace(/\s*\n\s*(\*\s*)?/g, "; ")
                .replace(/^(\*\s*)/, "").replace(/[;\s]+$/, "")
            );
            reject(
              new VaultHttpError(
                `Cannot ${what} at ${this.address}: ${status} ${
                  errors.join("; ") || res.statusMessage || "error"
                }`,
                status,
                errors,
              ),
            );
          }));
      });
      const timer = setTimeout(() => {
        finish(() => reject(this.#unreachable(what, `no answer within ${options.timeoutMs} ms`)));
        req.destroy();
      }, options.timeoutMs);
      const onAbort = () => {
        finish(() => reject(signal!.reason));
        req.destroy();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      req.on("error", (e: Error) => finish(() => reject(this.#unreachable(what, e.message))));
      req.end(payload);
    });
  }

  #unreachable(what: string, why: string): VaultUnreachableError {
    return new VaultUnreachableError(`Cannot ${what} at ${this.address}: ${why}`);
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.#agent.destroy();
  }
}

/** A string field of a Vault `data` object, or a clear error naming it. */
export function dataString(body: VaultBody, field: string, what: string): string {
  const v = (body.data as VaultBody | undefined)?.[field];
  if (typeof v !== "string" || v === "") {
    throw new TypeError(`Cannot read ${what}: Vault's answer has no "${field}"`);
  }
  return v;
}
