/**
 * The external plugin protocol, version 1: JSON-RPC 2.0 over the plugin's stdin/stdout, one JSON
 * message per line (UTF-8, `\n`). The agent is the client; the plugin answers. stderr is free-form
 * log output that the agent forwards to its log. See docs/plugins.md.
 *
 * Lifecycle: `plugin.handshake` → `plugin.configure` → the kind's calls (and `plugin.health`) →
 * `plugin.shutdown` (the plugin answers, then exits). Requests may overlap; answer each by `id`.
 *
 * @module
 */
import type { HealthResult, PluginKind, TaskContext } from "../types.ts";

/** Protocol name sent in the handshake. */
export const PROTOCOL = "camblet-plugin";
/** The version this SDK and the agent speak. */
export const PROTOCOL_VERSION = 1;

/**
 * Default maximum size of one message (one line, newline excluded): 1 MiB. The agent kills a
 * plugin that writes a longer line on stdout (configurable per plugin: `maxMessageSize`).
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

/** Method names. */
export const METHOD = {
  handshake: "plugin.handshake",
  configure: "plugin.configure",
  health: "plugin.health",
  shutdown: "plugin.shutdown",
  caSign: "ca.sign",
  caTrustBundle: "ca.trustBundle",
  attestorCollect: "attestor.collect",
} as const;

/** JSON-RPC error codes: the standard ones and ours (1000+). */
export const ERROR = {
  parse: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internal: -32603,
  /** `plugin.configure` refused the config; `data.problems` lists `{field, message}`. */
  badConfig: 1001,
  /** `ca.sign`: the CSR is not acceptable (e.g. its signature does not verify). */
  csrRejected: 1002,
  /** The backend is unavailable right now; the agent may retry later. */
  unavailable: 1003,
} as const;

/** `plugin.handshake` params. */
export interface HandshakeParams {
  protocol: typeof PROTOCOL;
  /** Versions the agent speaks; the plugin picks one. */
  versions: number[];
  /** The kind and name the config declares. */
  kind: PluginKind;
  name: string;
  agentVersion: string;
}

/** `plugin.handshake` result. */
export interface HandshakeResult {
  protocol: typeof PROTOCOL;
  version: number;
  /** Must equal the declared kind. */
  kind: PluginKind;
  pluginVersion?: string;
}

/** `plugin.configure` params. */
export interface ConfigureParams {
  /** The `config` object of the plugin's entry, as written. */
  config: unknown;
  trustDomain: string;
}

/** `plugin.configure` result; CA plugins must report their maximum leaf lifetime. */
export interface ConfigureResult {
  maxTtlSeconds?: number;
}

/** `ca.sign` params: already checked against policy by the agent. */
export interface CaSignParams {
  /** PEM `CERTIFICATE REQUEST`; verify its signature and use its public key. */
  csr: string;
  spiffeId: string;
  dnsNames: string[];
  /** Do not exceed it (nor your maximum). */
  ttlSeconds: number;
}

/** `ca.sign` result: standard base64 DER. */
export interface CaSignResult {
  certificate: string;
  /** Intermediates, leaf and anchors excluded. */
  chain: string[];
  /** Self-signed roots to trust (old and new during a rotation). */
  trustAnchors: string[];
}

/** `ca.trustBundle` result. */
export interface CaTrustBundleResult {
  trustAnchors: string[];
}

/** `attestor.collect` params. */
export interface AttestorCollectParams {
  task: TaskContext;
}

/** `attestor.collect` result: label name → values. */
export interface AttestorCollectResult {
  labels: Record<string, string[]>;
}

/** `plugin.health` result: the same shape as a built-in plugin's `health()`. */
export type { HealthResult };

/** A JSON-RPC request (with `id`) or notification (without). */
export interface RpcRequest {
  jsonrpc: "2.0";
  id?: number | string;
  method: string;
  params?: unknown;
}

/** A JSON-RPC error object. */
export interface RpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

/** A JSON-RPC response. */
export type RpcResponse =
  | { jsonrpc: "2.0"; id: number | string | null; result: unknown }
  | { jsonrpc: "2.0"; id: number | string | null; error: RpcErrorObject };

/** An error a plugin handler throws to answer with a specific code. */
export class PluginRpcError extends Error {
  override name = "PluginRpcError";
  constructor(readonly code: number, message: string, readonly data?: unknown) {
    super(message);
  }
}
