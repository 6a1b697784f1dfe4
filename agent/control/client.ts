/**
 * A client for the control socket (used by `camblet-agent status` and `trace`).
 *
 * @module
 */

/** Connects to the agent's control socket at `path`. */
export class ControlClient {
  readonly path: string;
  readonly #client: Deno.HttpClient;

  constructor(path: string) {
    this.path = path;
    this.#client = Deno.createHttpClient({ proxy: { transport: "unix", path } });
  }

  /** GET `pathAndQuery`; explains a missing or refused socket in terms of the agent. */
  async get(pathAndQuery: string, signal?: AbortSignal): Promise<Response> {
    try {
      return await fetch(`http://camblet-agent${pathAndQuery}`, {
        client: this.#client,
        ...(signal ? { signal } : {}),
      });
    } catch (e) {
      if (signal?.aborted) throw e;
      const err = e as Error;
      const why = `${err.message} ${(err.cause as Error | undefined)?.message ?? ""}`;
      let exists = true;
      try {
        Deno.statSync(this.path);
      } catch {
        exists = false;
      }
      const hint = !exists
        ? "no agent is running (no socket there; or it uses another --control-socket)"
        : /denied|EACCES|permission/i.test(why)
        ? "permission denied (the socket is root-only: run as root)"
        : /refused|ECONNREFUSED/i.test(why)
        ? "nothing answers on the socket (the agent is not running)"
        : why.trim();
      throw new Error(`Cannot reach the agent at ${this.path}: ${hint}`, { cause: e });
    }
  }

  /** GET and parse JSON; a non-2xx status becomes an error with the body. */
  async json<T>(pathAndQuery: string): Promise<T> {
    const r = await this.get(pathAndQuery);
    const text = await r.text();
    if (!r.ok) {
      throw new Error(`Cannot read ${pathAndQuery} from the agent: ${r.status} ${text.trim()}`);
    }
    return JSON.parse(text) as T;
  }

  /** Closes the underlying HTTP client. */
  close(): void {
    this.#client.close();
  }
}
