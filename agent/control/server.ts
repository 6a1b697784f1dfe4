/**
 * The control socket: HTTP over a Unix socket (default `/run/camblet/agent.sock`, mode 0600 in a
 * 0700 directory), never TCP unless `--metrics-address` asks for a metrics listener. Unix sockets
 * are not intercepted by camblet-driver; every TCP accept of ours is (protocol doc §1, Deno note),
 * which is why the kernel is answered from a worker and not from this thread.
 *
 * Endpoints: `/healthz`, `/readyz`, `/metrics` (Prometheus), `/v1/status` (JSON), `/v1/trace`
 * (NDJSON stream; `?pid=&uid=&command_name=`).
 *
 * @module
 */
import { dirname } from "node:path";
import type { TraceFilter, TraceHub } from "./trace_hub.ts";

/** What the server asks the daemon for. */
export interface ControlSources {
  /** Readiness and, when not ready, why. */
  ready(): { ready: boolean; reason?: string };
  status(): Promise<unknown>;
  metrics(): Promise<string>;
  trace: TraceHub;
}

/** A running listener. */
export interface Listener {
  /** `unix:/run/camblet/agent.sock` or `tcp:127.0.0.1:9090`. */
  readonly address: string;
  close(): Promise<void>;
}

function intParam(u: URL, name: string): number | undefined {
  const v = u.searchParams.get(name);
  if (v === null || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got "${v}"`);
  }
  return n;
}

/** The request handler shared by both listeners (`metricsOnly` for TCP). */
export function controlHandler(
  src: ControlSources,
  metricsOnly = false,
): (req: Request) => Promise<Response> {
  return async (req) => {
    const u = new URL(req.url);
    try {
      switch (u.pathname) {
        case "/healthz":
          return new Response("ok\n");
        case "/readyz": {
          const r = src.ready();
          return new Response(r.ready ? "ready\n" : `not ready: ${r.reason ?? "starting"}\n`, {
            status: r.ready ? 200 : 503,
          });
        }
        case "/metrics":
          return new Response(await src.metrics(), {
            headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
          });
      }
      if (metricsOnly) return new Response("not found\n", { status: 404 });
      switch (u.pathname) {
        case "/v1/status":
          return Response.json(await src.status());
        case "/v1/trace": {
          const filter: TraceFilter = {};
          const pid = intParam(u, "pid");
          const uid = intParam(u, "uid");
          const name = u.searchParams.get("command_name");
          if (pid !== undefined) filter.pid = pid;
          if (uid !== undefined) filter.uid = uid;
          if (name) filter.command_name = name;
          const body = await src.trace.subscribe(filter);
          return new Response(body, { headers: { "content-type": "application/x-ndjson" } });
        }
        default:
          return new Response("not found\n", { status: 404 });
      }
    } catch (e) {
      const status = e instanceof RangeError ? 400 : 500;
      return new Response(`${(e as Error).message}\n`, { status });
    }
  };
}

async function socketInUse(path: string): Promise<boolean> {
  try {
    const c = await Deno.connect({ transport: "unix", path });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Serves the control API on the Unix socket `path`: creates its directory (0700), refuses to take
 * over a socket another agent answers on, replaces a stale one, and makes the socket 0600.
 */
export async function serveControlSocket(path: string, src: ControlSources): Promise<Listener> {
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await Deno.chmod(dir, 0o700).catch(() => {});
  if (await socketInUse(path)) {
    throw new Error(`Cannot serve the control socket "${path}": another agent is answering on it`);
  }
  await Deno.remove(path).catch(() => {});
  const ac = new AbortController();
  const server = Deno.serve(
    { path, signal: ac.signal, onListen: () => {} },
    controlHandler(src),
  );
  await Deno.chmod(path, 0o600);
  return {
    address: `unix:${path}`,
    close: async () => {
      ac.abort();
      await server.finished;
      await Deno.remove(path).catch(() => {});
    },
  };
}

/** Serves `/metrics`, `/healthz` and `/readyz` on TCP `host:port` (only when asked). */
export async function serveMetricsTcp(address: string, src: ControlSources): Promise<Listener> {
  const m = /^(.*):(\d+)$/.exec(address);
  if (!m) throw new RangeError(`Cannot listen on metrics address "${address}": expected host:port`);
  const hostname = (m[1] || "0.0.0.0").replace(/^\[(.*)\]$/, "$1");
  const ac = new AbortController();
  let resolved!: (a: Deno.NetAddr) => void;
  const listening = new Promise<Deno.NetAddr>((r) => resolved = r);
  const server = Deno.serve(
    {
      hostname,
      port: Number(m[2]),
      signal: ac.signal,
      onListen: (a) => resolved(a as Deno.NetAddr),
    },
    controlHandler(src, true),
  );
  const a = await listening;
  return {
    address: `tcp:${a.hostname}:${a.port}`,
    close: async () => {
      ac.abort();
      await server.finished;
    },
  };
}
