/**
 * The plugin side of the external protocol: a JSON-RPC server on stdin/stdout. Handles the
 * handshake, `plugin.configure`, `plugin.health` and `plugin.shutdown`; the plugin supplies the
 * kind's methods. Kind helpers ({@linkcode serveCa}) build on it.
 *
 * @module
 */
import type { PluginKind } from "../types.ts";
import { LineTooLongError, LineWriter, readLines } from "./_lines.ts";
import {
  type ConfigureParams,
  type ConfigureResult,
  ERROR,
  type HandshakeParams,
  type HandshakeResult,
  type HealthResult,
  METHOD,
  PluginRpcError,
  PROTOCOL,
  PROTOCOL_VERSION,
  type RpcRequest,
} from "./protocol.ts";

/** What a plugin process implements. */
export interface PluginHandlers {
  kind: PluginKind;
  /** Reported in logs; the agent's config names the plugin. */
  version?: string;
  /** Validates and applies the config; throw {@linkcode PluginRpcError} with `ERROR.badConfig`. */
  configure?(
    config: unknown,
    ctx: { trustDomain: string },
  ): Promise<ConfigureResult> | ConfigureResult;
  health?(): Promise<HealthResult> | HealthResult;
  /** The kind's methods, e.g. `ca.sign`. */
  methods: Record<string, (params: unknown) => unknown>;
}

/** Streams to serve on (default: the process's stdin and stdout). */
export interface ServeOptions {
  input?: ReadableStream<Uint8Array>;
  output?: WritableStream<Uint8Array>;
  /** Longest request line accepted (default `DEFAULT_MAX_MESSAGE_BYTES`, 1 MiB). */
  maxMessageBytes?: number;
}

function errorOf(e: unknown) {
  if (e instanceof PluginRpcError) {
    return { code: e.code, message: e.message, ...(e.data !== undefined ? { data: e.data } : {}) };
  }
  return { code: ERROR.internal, message: e instanceof Error ? e.message : String(e) };
}

/**
 * Serves `handlers` until `plugin.shutdown` or the end of input.
 *
 * @example
 * ```ts ignore
 * import { servePlugin } from "./serve.ts";
 * await servePlugin({
 *   kind: "attestor",
 *   methods: { "attestor.collect": () => ({ labels: { "host:name": [Deno.hostname()] } }) },
 * });
 * ```
 */
export async function servePlugin(
  handlers: PluginHandlers,
  options: ServeOptions = {},
): Promise<void> {
  const out = new LineWriter(options.output ?? Deno.stdout.writable);
  const inFlight = new Set<Promise<void>>();
  let configured = handlers.configure === undefined;
  let handshaken = false;

  const dispatch = async (method: string, params: unknown): Promise<unknown> => {
    if (method === METHOD.handshake) {
      const p = params as Partial<HandshakeParams>;
      if (p?.protocol !== PROTOCOL || !p.versions?.includes(PROTOCOL_VERSION)) {
        throw new PluginRpcError(
          ERROR.invalidParams,
          `Cannot speak ${p?.protocol} versions ${
            JSON.stringify(p?.versions)
          }: this plugin speaks ${PROTOCOL} ${PROTOCOL_VERSION}`,
        );
      }
      if (p.kind !== handlers.kind) {
        throw new PluginRpcError(
          ERROR.invalidParams,
          `Cannot act as a ${p.kind} plugin: this plugin is a ${handlers.kind} plugin`,
        );
      }
      handshaken = true;
      const result: HandshakeResult = {
        protocol: PROTOCOL,
        version: PROTOCOL_VERSION,
        kind: handlers.kind,
      };
      if (handlers.version) result.pluginVersion = handlers.version;
      return result;
    }
    if (!handshaken) {
      throw new PluginRpcError(ERROR.invalidRequest, "Cannot serve calls before the handshake");
    }
    if (method === METHOD.configure) {
      const p = params as ConfigureParams;
      const result = (await handlers.configure?.(p.config, { trustDomain: p.trustDomain })) ?? {};
      configured = true;
      return result;
    }
    if (method === METHOD.health) return (await handlers.health?.()) ?? { ok: true };
    const handler = handlers.methods[method];
    if (!handler) throw new PluginRpcError(ERROR.methodNotFound, `Unknown method "${method}"`);
    if (!configured) {
      throw new PluginRpcError(
        ERROR.invalidRequest,
        `Cannot serve "${method}" before plugin.configure`,
      );
    }
    return await handler(params);
  };

  const answer = async (req: RpcRequest) => {
    try {
      const result = await dispatch(req.method, req.params);
      if (req.id !== undefined) {
        await out.send({ jsonrpc: "2.0", id: req.id, result: result ?? null });
      }
    } catch (e) {
      if (req.id !== undefined) await out.send({ jsonrpc: "2.0", id: req.id, error: errorOf(e) });
    }
  };

  const lines = readLines(options.input ?? Deno.stdin.readable, {
    ...(options.maxMessageBytes !== undefined ? { maxLineBytes: options.maxMessageBytes } : {}),
  });
  try {
    await serveLines(lines);
  } catch (e) {
    if (!(e instanceof LineTooLongError)) throw e;
    // The stream cannot be resynchronised without holding the line: say why, then stop serving.
    await out.send({
      jsonrpc: "2.0",
      id: null,
      error: { code: ERROR.invalidRequest, message: e.message },
    })
      .catch(() => {});
  }
  await Promise.allSettled(inFlight);
  await out.close();

  async function serveLines(lines: AsyncGenerator<string>): Promise<void> {
    for await (const line of lines) {
      if (line.trim() === "") continue;
      let req: RpcRequest;
      try {
        req = JSON.parse(line);
      } catch (e) {
        await out.send({
          jsonrpc: "2.0",
          id: null,
          error: { code: ERROR.parse, message: (e as Error).message },
        });
        continue;
      }
      if (req.method === METHOD.shutdown) {
        await Promise.allSettled(inFlight);
        if (req.id !== undefined) await out.send({ jsonrpc: "2.0", id: req.id, result: {} });
        break;
      }
      const p = answer(req);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
  }
}
