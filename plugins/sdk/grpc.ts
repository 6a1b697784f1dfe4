/**
 * A small gRPC client on `node:http2`: unary and server-streaming calls over a Unix socket
 * (containerd, the SPIFFE Workload API) or TLS with a client certificate (the SPIRE Server API).
 * Messages are raw protobuf bytes; `proto.ts` has the wire helpers.
 *
 * @module
 */
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { Buffer } from "node:buffer";

/** A call that ended with a non-zero `grpc-status`. */
export class GrpcError extends Error {
  override name = "GrpcError";
  /** gRPC status code (5 = NOT_FOUND, 14 = UNAVAILABLE, …). */
  readonly code: number;
  constructor(message: string, code: number) {
    super(message);
    this.code = code;
  }
}

/** gRPC status NOT_FOUND. */
export const GRPC_NOT_FOUND = 5;
/** gRPC status PERMISSION_DENIED. */
export const GRPC_PERMISSION_DENIED = 7;
/** gRPC status RESOURCE_EXHAUSTED (e.g. a server's rate limit). */
export const GRPC_RESOURCE_EXHAUSTED = 8;

/** How to reach the server. */
export interface GrpcTarget {
  /** Opens the byte stream (a Unix socket or a TLS socket negotiating `h2`). */
  connect(): net.Socket;
  /** `:authority` and scheme for requests. */
  origin: string;
  /** For messages: `unix:/path` or `host:port`. */
  describe: string;
}

/** Splits gRPC length-prefixed frames out of a byte stream. */
class FrameReader {
  #buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Uint8Array[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: Uint8Array[] = [];
    while (this.#buf.length >= 5) {
      const len = this.#buf.readUInt32BE(1);
      if (this.#buf.length < 5 + len) break;
      out.push(new Uint8Array(this.#buf.subarray(5, 5 + len)));
      this.#buf = this.#buf.subarray(5 + len);
    }
    return out;
  }
}

function frame(request: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + request.length);
  out.writeUInt32BE(request.length, 1);
  out.set(request, 5);
  return out;
}

/** One HTTP/2 session to a gRPC server, re-opened when it breaks. */
export class GrpcClient {
  readonly target: GrpcTarget;
  #session: http2.ClientHttp2Session | undefined;

  constructor(target: GrpcTarget) {
    this.target = target;
  }

  #sessionFor(): http2.ClientHttp2Session {
    const current = this.#session;
    if (current && !current.closed && !current.destroyed) return current;
    const session = http2.connect(this.target.origin, {
      createConnection: () => this.target.connect(),
    });
    const forget = () => {
      if (this.#session === session) this.#session = undefined;
    };
    session.on("error", forget);
    session.on("close", forget);
    session.on("goaway", forget);
    this.#session = session;
    return session;
  }

  /**
   * Opens a call; `onMessage` gets each response message, `onEnd` the outcome once. Returns a
   * cancel function.
   */
  #call(
    method: string,
    request: Uint8Array,
    metadata: Record<string, string>,
    onMessage: (m: Uint8Array) => void,
    onEnd: (error: Error | undefined) => void,
  ): () => void {
    const what = `gRPC ${method} on ${this.target.describe}`;
    let req: http2.ClientHttp2Stream;
    try {
      req = this.#sessionFor().request({
        ":method": "POST",
        ":path": method,
        "content-type": "application/grpc",
        te: "trailers",
        ...metadata,
      });
    } catch (e) {
      onEnd(new Error(`Cannot call ${what}: ${(e as Error).message}`));
      return () => {};
    }
    let status: string | undefined;
    let message = "";
    let ended = false;
    const end = (e: Error | undefined) => {
      if (ended) return;
      ended = true;
      onEnd(e);
    };
    const readStatus = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) {
        status = String(h["grpc-status"]);
        message = decodeURIComponent(String(h["grpc-message"] ?? ""));
      }
    };
    const frames = new FrameReader();
    req.on("response", readStatus);
    req.on("trailers", readStatus);
    req.on("data", (c: Buffer) => {
      for (const m of frames.push(c)) onMessage(m);
    });
    req.on("error", (e: Error) => end(new Error(`Cannot call ${what}: ${e.message}`)));
    req.on("close", () => {
      if (status === undefined) {
        return end(new Error(`Cannot call ${what}: stream closed without grpc-status`));
      }
      if (status !== "0") {
        return end(new GrpcError(`${what} failed: ${message} (code ${status})`, Number(status)));
      }
      end(undefined);
    });
    req.end(frame(request));
    return () => {
      if (!req.closed) req.close(http2.constants.NGHTTP2_CANCEL);
    };
  }

  /**
   * Calls `method` (`/package.Service/Method`) with a serialized request; resolves the serialized
   * response. `metadata` becomes request headers (e.g. `containerd-namespace`).
   */
  unary(
    method: string,
    request: Uint8Array,
    signal: AbortSignal,
    metadata: Record<string, string> = {},
  ): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      let response: Uint8Array | undefined;
      const onAbort = () => {
        cancel();
        reject(signal.reason);
      };
      const cancel = this.#call(method, request, metadata, (m) => response ??= m, (e) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) return;
        if (e) reject(e);
        else resolve(response ?? new Uint8Array());
      });
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Calls a server-streaming `method`; yields each response message until the server ends the
   * stream (a non-zero status throws {@linkcode GrpcError}) or `signal` aborts (the iteration
   * then ends quietly).
   */
  async *serverStream(
    method: string,
    request: Uint8Array,
    signal: AbortSignal,
    metadata: Record<string, string> = {},
  ): AsyncGenerator<Uint8Array, void, undefined> {
    if (signal.aborted) return;
    const queue: Uint8Array[] = [];
    let done = false;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const poke = () => {
      wake?.();
      wake = undefined;
    };
    const cancel = this.#call(method, request, metadata, (m) => {
      queue.push(m);
      poke();
    }, (e) => {
      done = true;
      failure = e;
      poke();
    });
    const onAbort = () => {
      cancel();
      done = true;
      poke();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      while (true) {
        if (queue.length > 0) {
          yield queue.shift()!;
          continue;
        }
        if (done) break;
        await new Promise<void>((r) => wake = r);
      }
      if (failure && !signal.aborted) throw failure;
    } finally {
      signal.removeEventListener("abort", onAbort);
      cancel();
    }
  }

  /** Closes the session; pending calls fail. */
  close(): Promise<void> {
    const s = this.#session;
    this.#session = undefined;
    if (!s || s.closed || s.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        s.destroy();
        resolve();
      }, 200);
      s.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** A gRPC client for a Unix socket path (`/run/x.sock` or `unix:///run/x.sock`). */
export class GrpcUnixClient extends GrpcClient {
  readonly path: string;

  constructor(path: string) {
    const p = path.startsWith("unix://") ? path.slice("unix://".length) : path;
    super({ connect: () => net.connect(p), origin: "http://localhost", describe: `unix:${p}` });
    this.path = p;
  }
}

/** TLS settings for {@linkcode grpcTlsTarget}. */
export interface GrpcTlsOptions {
  host: string;
  port: number;
  /** PEM trust anchors for the server's certificate. */
  ca: string;
  /** PEM client certificate chain and PKCS#8 key (mutual TLS). */
  cert?: string;
  key?: string;
  /**
   * Checks the server's certificate instead of its host name (e.g. a SPIFFE ID in its URI SAN):
   * return an Error to refuse it. The chain is always verified against `ca`.
   */
  checkPeer?(subjectAltName: string): Error | undefined;
}

/**
 * A target over TLS negotiating `h2`. The options are read on every connect, so a caller can
 * swap a rotated client certificate by mutating the object it passes.
 */
export function grpcTlsTarget(options: GrpcTlsOptions): GrpcTarget {
  return {
    origin: `https://${options.host}:${options.port}`,
    describe: `${options.host}:${options.port}`,
    connect: () =>
      tls.connect({
        host: options.host,
        port: options.port,
        ca: options.ca,
        ...(options.cert !== undefined ? { cert: options.cert } : {}),
        ...(options.key !== undefined ? { key: options.key } : {}),
        ALPNProtocols: ["h2"],
        rejectUnauthorized: true,
        ...(options.checkPeer
          ? {
            checkServerIdentity: (_host: string, cert: tls.PeerCertificate) =>
              options.checkPeer!(cert.subjectaltname ?? ""),
          }
          : {}),
      }),
  };
}
