/**
 * A minimal unary gRPC client over a Unix socket (containerd, CRI), on `node:http2`.
 *
 * Messages are raw protobuf bytes; see `proto.ts` for the wire helpers.
 *
 * @module
 */
import http2 from "node:http2";
import net from "node:net";
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

/** One HTTP/2 session to a Unix socket, re-opened when it breaks. */
export class GrpcUnixClient {
  readonly path: string;
  #session: http2.ClientHttp2Session | undefined;

  constructor(path: string) {
    this.path = path.startsWith("unix://") ? path.slice("unix://".length) : path;
  }

  #sessionFor(): http2.ClientHttp2Session {
    const current = this.#session;
    if (current && !current.closed && !current.destroyed) return current;
    const session = http2.connect("http://localhost", {
      createConnection: () => net.connect(this.path),
    });
    session.on("error", () => {
      if (this.#session === session) this.#session = undefined;
    });
    session.on("close", () => {
      if (this.#session === session) this.#session = undefined;
    });
    this.#session = session;
    return session;
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
      const what = `gRPC ${method} on unix:${this.path}`;
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
        return reject(new Error(`Cannot call ${what}: ${(e as Error).message}`));
      }
      const chunks: Buffer[] = [];
      let status: string | undefined;
      let message = "";
      const onAbort = () => {
        req.close(http2.constants.NGHTTP2_CANCEL);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const readStatus = (h: http2.IncomingHttpHeaders) => {
        if (h["grpc-status"] !== undefined) {
          status = String(h["grpc-status"]);
          message = decodeURIComponent(String(h["grpc-message"] ?? ""));
        }
      };
      req.on("response", readStatus);
      req.on("trailers", readStatus);
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("error", (e: Error) => {
        signal.removeEventListener("abort", onAbort);
        reject(new Error(`Cannot call ${what}: ${e.message}`));
      });
      req.on("close", () => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted) return;
        if (status === undefined) {
          return reject(new Error(`Cannot call ${what}: stream closed without grpc-status`));
        }
        if (status !== "0") {
          return reject(
            new GrpcError(`${what} failed: ${message} (code ${status})`, Number(status)),
          );
        }
        const body = Buffer.concat(chunks);
        if (body.length < 5) return resolve(new Uint8Array());
        const len = body.readUInt32BE(1);
        resolve(new Uint8Array(body.subarray(5, 5 + len)));
      });
      const frame = Buffer.alloc(5 + request.length);
      frame.writeUInt32BE(request.length, 1);
      frame.set(request, 5);
      req.end(frame);
    });
  }

  /** Closes the session; pending calls fail. */
  close(): Promise<void> {
    const s = this.#session;
    this.#session = undefined;
    if (!s || s.closed || s.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      s.close(() => resolve());
      setTimeout(() => {
        s.destroy();
        resolve();
      }, 200);
    });
  }
}
