/**
 * JSON over HTTP on a Unix socket (Docker Engine API and friends), with Deno's fetch.
 *
 * @module
 */

/** A non-2xx answer. */
export class HttpStatusError extends Error {
  override name = "HttpStatusError";
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

/** Accepts `unix:///var/run/docker.sock` (Go agent's form) or a bare path. */
export function socketPathOf(value: string): string {
  return value.startsWith("unix://") ? value.slice("unix://".length) : value;
}

/**
 * A keep-alive HTTP client bound to one Unix socket. Close it with {@linkcode UnixHttpClient.close}.
 *
 * @example
 * ```ts ignore
 * import { UnixHttpClient } from "./unix_http.ts";
 * const docker = new UnixHttpClient("/var/run/docker.sock");
 * const info = await docker.getJson("/v1.41/info", AbortSignal.timeout(500));
 * docker.close();
 * ```
 */
export class UnixHttpClient {
  readonly path: string;
  #client: Deno.HttpClient | undefined;

  constructor(path: string) {
    this.path = socketPathOf(path);
  }

  /** GETs `urlPath` and parses JSON; a 404 resolves to `undefined`. */
  async getJson<T>(urlPath: string, signal: AbortSignal): Promise<T | undefined> {
    this.#client ??= Deno.createHttpClient({ proxy: { transport: "unix", path: this.path } });
    let res: Response;
    try {
      res = await fetch(`http://localhost${urlPath}`, { client: this.#client, signal });
    } catch (e) {
      if (signal.aborted) throw e;
      throw new Error(`Cannot GET ${urlPath} on unix:${this.path}: ${(e as Error).message}`);
    }
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (!res.ok) {
      const text = (await res.text()).slice(0, 200).trim();
      throw new HttpStatusError(
        `Cannot GET ${urlPath} on unix:${this.path}: HTTP ${res.status} ${text}`,
        res.status,
      );
    }
    return await res.json() as T;
  }

  /** Releases the connection pool. */
  close(): void {
    this.#client?.close();
    this.#client = undefined;
  }
}
