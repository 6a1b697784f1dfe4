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
import { basename, dirname, join } from "node:path";
import { logger } from "../log.ts";
import type { TraceFilter, TraceHub } from "./trace_hub.ts";

/** What the server asks the daemon for. */
export interface ControlSources {
  /** Readiness and, when not ready, why. */
  ready(): { ready: boolean; reason?: string };
  status(): Promise<unknown>;
  metrics(): Promise<string>;
  trace: TraceHub;
  /** `/v1/events`: the runtime guard's NDJSON stream (`?pid=&policy=&label=&outcome=`). */
  events?(u: URL): ReadableStream<Uint8Array>;
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
        case "/v1/events":
          if (!src.events) return new Response("no runtime guard\n", { status: 404 });
          return new Response(src.events(u), {
            headers: { "content-type": "application/x-ndjson" },
          });
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

function kindOf(info: Deno.FileInfo): string {
  if (info.isSymlink) return "a symbolic link";
  if (info.isFile) return "a regular file";
  if (info.isDirectory) return "a directory";
  if (info.isFifo) return "a FIFO";
  return "something that is not a socket";
}

const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, "0");

/**
 * The socket's directory: created (0700) when missing, else used as it is when it is ours (or
 * root's) and nobody else can rename entries in it (not group/world writable, or sticky like
 * /tmp). Its mode is never changed: it may be shared.
 */
async function socketDir(path: string, fail: (why: string) => Error): Promise<void> {
  const dir = dirname(path);
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw fail(`cannot read "${dir}": ${e}`);
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    await Deno.chmod(dir, 0o700);
    info = await Deno.stat(dir);
  }
  if (!info.isDirectory) throw fail(`"${dir}" is not a directory`);
  const uid = Deno.uid();
  if (info.uid !== uid && info.uid !== 0) {
    throw fail(`directory "${dir}" is owned by uid ${info.uid}, not by this user (${uid}) or root`);
  }
  const mode = info.mode ?? 0;
  if ((mode & 0o022) !== 0 && (mode & 0o1000) === 0) {
    throw fail(
      `directory "${dir}" is writable by group or others without the sticky bit ` +
        `(mode ${octal(mode)})`,
    );
  }
}

/** Removes a stale socket of ours at `path`; refuses anything else that is there. */
async function clearPath(path: string, fail: (why: string) => Error): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw fail(`cannot read it: ${e}`);
  }
  if (!info.isSocket) {
    throw fail(`${kindOf(info)} is there (left as it is; remove it or choose another path)`);
  }
  if (await socketInUse(path)) throw fail("another agent is answering on it");
  if (info.uid !== Deno.uid()) {
    throw fail(`a stale socket of uid ${info.uid} is there (not ours to remove)`);
  }
  await Deno.remove(path);
}

/**
 * Serves the control API on the Unix socket `path`: creates its directory (0700) when missing,
 * refuses a directory that is not ours or not safe, refuses to take over a socket another agent
 * answers on, replaces a stale socket of ours and nothing else, and makes the socket 0600 before
 * it appears at `path` (it is bound in a private directory, then linked into place).
 */
export async function serveControlSocket(path: string, src: ControlSources): Promise<Listener> {
  const fail = (why: string) => new Error(`Cannot serve the control socket "${path}": ${why}`);
  await socketDir(path, fail);
  await clearPath(path, fail);
  const dir = dirname(path);
  const tmpDir = await Deno.makeTempDir({ dir, prefix: `.${basename(path)}.tmp-` });
  const tmp = join(tmpDir, "s");
  const ac = new AbortController();
  let server: Deno.HttpServer | undefined;
  try {
    server = Deno.serve({ path: tmp, signal: ac.signal, onListen: () => {} }, controlHandler(src));
    await Deno.chmod(tmp, 0o600);
    // link() never replaces what appeared at `path` meanwhile.
    await Deno.link(tmp, path).catch((e) => {
      throw fail(e instanceof Deno.errors.AlreadyExists ? "something appeared there" : `${e}`);
    });
  } catch (e) {
    ac.abort();
    await server?.finished;
    throw e;
  } finally {
    await Deno.remove(tmpDir, { recursive: true }).catch(() => {});
  }
  const s = server;
  return {
    address: `unix:${path}`,
    close: async () => {
      ac.abort();
      await s.finished;
      // Only our socket: a file put there since is not ours to delete.
      const info = await Deno.lstat(path).catch(() => undefined);
      if (info?.isSocket && info.uid === Deno.uid()) await Deno.remove(path).catch(() => {});
    },
  };
}

/**
 * Serves `/metrics`, `/healthz` and `/readyz` on TCP `host:port` (only when asked). Without
 * authentication, so `:port` alone means loopback; every interface must be asked for by name.
 */
export async function serveMetricsTcp(address: string, src: ControlSources): Promise<Listener> {
  const m = /^(.*):(\d+)$/.exec(address);
  if (!m) throw new RangeError(`Cannot listen on metrics address "${address}": expected host:port`);
  const hostname = (m[1] || "127.0.0.1").replace(/^\[(.*)\]$/, "$1");
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
  const log = logger("control");
  if (!m[1]) {
    log.info(
      "Serving metrics on loopback only: no host given (name one, e.g. 0.0.0.0:PORT, to listen on every interface)",
      {
        address: `${a.hostname}:${a.port}`,
      },
    );
  } else if (!/^(127\.|::1$|localhost$)/.test(hostname)) {
    log.warn("Serving metrics without authentication beyond loopback", {
      address: `${a.hostname}:${a.port}`,
    });
  }
  return {
    address: `tcp:${a.hostname}:${a.port}`,
    close: async () => {
      ac.abort();
      await server.finished;
    },
  };
}
