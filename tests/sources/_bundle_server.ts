/**
 * A real loopback HTTP server (Deno.serve on 127.0.0.1) serving policy bundles the way a bundle
 * service does: ETag and If-None-Match (304), and on demand 500s, slow answers, garbage and a
 * bearer token requirement. Tests switch what it serves between checks.
 *
 * @module
 */
import { createHash } from "node:crypto";

/** What the server answers. */
export type Serve =
  | { kind: "bundle"; body: Uint8Array; etag?: boolean; contentType?: string }
  | { kind: "status"; status: number; body: string }
  | { kind: "slow"; delayMs: number; body: Uint8Array };

/** One request seen. */
export interface Seen {
  path: string;
  ifNoneMatch: string | null;
  authorization: string | null;
  status: number;
}

/** A running bundle server. */
export class BundleServer {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  serve: Serve = { kind: "status", status: 404, body: "nothing yet" };
  /** When set, requests without `Authorization: Bearer <token>` get 401. */
  token: string | undefined;
  readonly seen: Seen[] = [];

  private constructor(options: { cert?: string; key?: string }) {
    this.#server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: () => {},
      ...(options.cert ? { cert: options.cert, key: options.key! } : {}),
    }, (req) => this.#handle(req));
  }

  /** Starts on a free port (HTTPS when `cert` and `key` are given). */
  static start(options: { cert?: string; key?: string } = {}): BundleServer {
    return new BundleServer(options);
  }

  /** The URL of `path` on this server. */
  url(path = "/bundles/camblet.tar.gz", host = "127.0.0.1"): string {
    const scheme = this.#tls ? "https" : "http";
    return `${scheme}://${host}:${this.#server.addr.port}${path}`;
  }

  #tls = false;

  async #handle(req: Request): Promise<Response> {
    const seen: Seen = {
      path: new URL(req.url).pathname,
      ifNoneMatch: req.headers.get("if-none-match"),
      authorization: req.headers.get("authorization"),
      status: 0,
    };
    this.seen.push(seen);
    const answer = async (): Promise<Response> => {
      if (this.token && seen.authorization !== `Bearer ${this.token}`) {
        return new Response("unauthorized", { status: 401 });
      }
      const s = this.serve;
      if (s.kind === "status") return new Response(s.body, { status: s.status });
      if (s.kind === "slow") {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, s.delayMs);
          req.signal.addEventListener("abort", () => (clearTimeout(t), resolve()), { once: true });
        });
        return new Response(s.body as Uint8Array<ArrayBuffer>);
      }
      const etag = `"${createHash("sha256").update(s.body).digest("hex").slice(0, 16)}"`;
      const headers: Record<string, string> = {
        "content-type": s.contentType ?? "application/gzip",
      };
      if (s.etag ?? true) {
        headers["etag"] = etag;
        if (seen.ifNoneMatch === etag) return new Response(null, { status: 304, headers });
      }
      return new Response(s.body as Uint8Array<ArrayBuffer>, { headers });
    };
    const r = await answer();
    seen.status = r.status;
    return r;
  }

  /** Stops the server. */
  async close(): Promise<void> {
    await this.#server.shutdown();
  }

  /** Marks the server as HTTPS (for {@linkcode url}). */
  static async startTls(cert: string, key: string): Promise<BundleServer> {
    const s = new BundleServer({ cert, key });
    s.#tls = true;
    await Promise.resolve();
    return s;
  }
}

/** A CA and a server certificate for 127.0.0.1 signed by it, made with the openssl CLI. */
export async function makeTlsCerts(
  dir: string,
): Promise<{ caFile: string; cert: string; key: string }> {
  const run = async (args: string[]) => {
    const out = await new Deno.Command("openssl", { args, cwd: dir, stderr: "piped" }).output();
    if (out.code !== 0) throw new Error(new TextDecoder().decode(out.stderr));
  };
  await run([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=test bundle CA",
  ]);
  await run([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=127.0.0.1",
  ]);
  await Deno.writeTextFile(`${dir}/ext.cnf`, "subjectAltName=IP:127.0.0.1\n");
  await run([
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  ]);
  return {
    caFile: `${dir}/ca.pem`,
    cert: await Deno.readTextFile(`${dir}/server.pem`),
    key: await Deno.readTextFile(`${dir}/server.key`),
  };
}
