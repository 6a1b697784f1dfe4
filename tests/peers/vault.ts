/**
 * A real Vault-API server (OpenBao's API; see {@linkcode VAULT_NOTE}) in dev mode on a free
 * loopback port, plus a small HTTP client for setting it up in tests.
 *
 * @module
 */

import { join } from "node:path";
import { VAULT_NOTE } from "./catalog.ts";
import { ensurePeer } from "./ensure_peer.ts";
import { freePort, type LoggedProcess, spawnLogged, waitFor } from "./_process.ts";

export { VAULT_NOTE };

/** Options for {@linkcode startVault}. */
export interface VaultOptions {
  /** Serve HTTPS with a generated CA (`-dev-tls`); see {@linkcode VaultServer.caCertPem}. */
  tls?: boolean;
}

/** A running dev-mode server. Unsealed, in-memory, with only the dev defaults configured. */
export interface VaultServer {
  /** `http://127.0.0.1:<port>`, or `https://` with `tls`. */
  address: string;
  rootToken: string;
  /** With `tls`: the CA that signed the server certificate (PEM) and its file. */
  caCertPem?: string;
  caCertPath?: string;
  /** The server's version from `sys/health`. */
  version: string;
  /** The server's log (stdout and stderr). */
  logPath: string;
  /** Process id (for fault tests that pause it with SIGSTOP). */
  pid: number;
  /** Stops the server and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts `vault server -dev` on a free loopback port with a random root token. Configures nothing
 * else: tests mount what they need over the API (see {@linkcode enablePki}).
 *
 * @example
 * ```ts ignore
 * await using vault = await startVault();
 * const health = await vaultRequest(vault, "GET", "sys/health");
 * ```
 */
export async function startVault(options: VaultOptions = {}): Promise<VaultServer> {
  const bin = await ensurePeer("vault");
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) { // a port taken between probe and bind: retry
    const dir = await Deno.makeTempDir({ prefix: "camblet-vault-" });
    const port = freePort();
    const address = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`;
    const rootToken = `camblet-root-${crypto.randomUUID()}`;
    const env: Record<string, string> = { HOME: dir };
    for (const k of ["PATH", "TMPDIR"]) {
      const v = Deno.env.get(k);
      if (v !== undefined) env[k] = v;
    }
    const args = [
      "server",
      "-dev",
      `-dev-listen-address=127.0.0.1:${port}`,
      `-dev-root-token-id=${rootToken}`,
      "-dev-no-store-token",
    ];
    const caCertPath = join(dir, "tls", "vault-ca.pem");
    if (options.tls) args.push("-dev-tls", `-dev-tls-cert-dir=${join(dir, "tls")}`);
    let proc: LoggedProcess | undefined;
    try {
      await Deno.mkdir(join(dir, "tls"));
      proc = await spawnLogged(bin, args, {
        logPath: join(dir, "vault.log"),
        cwd: dir,
        env,
        clearEnv: true,
      });
      let caCertPem: string | undefined;
      const health = await waitFor("vault sys/health", async () => {
        if (options.tls) caCertPem ??= await Deno.readTextFile(caCertPath);
        const body = await vaultRequest({ address, caCertPem }, "GET", "sys/health");
        return body.sealed === false ? body : undefined;
      }, { timeoutMs: 30_000, exited: proc.child.status });
      const running = proc;
      const stop = async () => {
        await running.stop();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      };
      return {
        address,
        rootToken,
        ...(caCertPem === undefined ? {} : { caCertPem, caCertPath }),
        version: String(health.version ?? "unknown"),
        logPath: running.logPath,
        pid: running.child.pid,
        stop,
        [Symbol.asyncDispose]: stop,
      };
    } catch (error) {
      const tail = proc === undefined ? "" : `\n${await proc.logTail()}`;
      await proc?.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      lastError = new Error(`Cannot start vault on ${address}: ${(error as Error).message}${tail}`);
    }
  }
  throw lastError;
}

/**
 * The OpenBao-named entry point. Runs the Vault build because OpenBao's server is not installable
 * from the Go module proxy ({@linkcode VAULT_NOTE}); the API the tests use is the same.
 */
export const startOpenBao: (options?: VaultOptions) => Promise<VaultServer> = startVault;

/** A Vault API error with the HTTP status and Vault's `errors` list. */
export class VaultApiError extends Error {
  override name = "VaultApiError";
  constructor(message: string, readonly status: number, readonly errors: string[]) {
    super(message);
  }
}

/** Where and as whom to call: a server, or any address, token and CA. */
export interface VaultTarget {
  address: string;
  rootToken?: string;
  /** Trust this CA (PEM) for an `https` address. */
  caCertPem?: string | undefined;
}

/**
 * Calls `<address>/v1/<path>` with the root token (or `options.token`) and returns the JSON body
 * (`{}` for 204). Throws {@linkcode VaultApiError} on a non-2xx answer.
 */
export async function vaultRequest(
  target: VaultTarget,
  method: string,
  path: string,
  body?: unknown,
  options: { token?: string; namespace?: string } = {},
): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = {};
  const token = options.token ?? target.rootToken;
  if (token !== undefined) headers["X-Vault-Token"] = token;
  if (options.namespace !== undefined) headers["X-Vault-Namespace"] = options.namespace;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const client = target.caCertPem === undefined
    ? undefined
    : Deno.createHttpClient({ caCerts: [target.caCertPem] });
  let res: Response;
  let text: string;
  try {
    res = await fetch(`${target.address}/v1/${path.replace(/^\/+/, "")}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(client === undefined ? {} : { client }),
    });
    text = await res.text();
  } finally {
    client?.close();
  }
  const json = text === "" ? {} : JSON.parse(text) as Record<string, unknown>;
  if (!res.ok) {
    const errors = Array.isArray(json.errors) ? json.errors.map(String) : [text];
    throw new VaultApiError(
      `Cannot ${method} ${path}: ${res.status} ${errors.join("; ")}`,
      res.status,
      errors,
    );
  }
  return json;
}

/** Options for {@linkcode enablePki}. */
export interface EnablePkiOptions {
  /** Mount path (default `pki`). */
  mount?: string;
  /** Common name of the generated root (default `Camblet Test Root CA`). */
  rootCN?: string;
  /** The kernel driver needs RSA; `ec` exists to test refusal of non-RSA chains. */
  keyType?: "rsa" | "ec";
  /** Key size (default 2048 for RSA, 256 for EC). */
  keyBits?: number;
  /** Root TTL and the mount's max lease TTL (default `87600h`). */
  ttl?: string;
}

/** The root CA {@linkcode enablePki} generated. */
export interface PkiRoot {
  mount: string;
  /** PEM of the root certificate. */
  certificate: string;
  issuerId: string;
  serialNumber: string;
}

/**
 * Mounts a PKI secrets engine and generates an internal root CA over the HTTP API.
 *
 * @example
 * ```ts ignore
 * const root = await enablePki(vault, { mount: "pki", rootCN: "Test Root", keyType: "rsa" });
 * ```
 */
export async function enablePki(
  server: VaultTarget,
  options: EnablePkiOptions = {},
): Promise<PkiRoot> {
  const mount = options.mount ?? "pki";
  const keyType = options.keyType ?? "rsa";
  const ttl = options.ttl ?? "87600h";
  await vaultRequest(server, "POST", `sys/mounts/${mount}`, {
    type: "pki",
    config: { max_lease_ttl: ttl },
  });
  const res = await vaultRequest(server, "POST", `${mount}/root/generate/internal`, {
    common_name: options.rootCN ?? "Camblet Test Root CA",
    key_type: keyType,
    key_bits: options.keyBits ?? (keyType === "rsa" ? 2048 : 256),
    ttl,
  });
  const data = res.data as Record<string, unknown>;
  return {
    mount,
    certificate: String(data.certificate),
    issuerId: String(data.issuer_id),
    serialNumber: String(data.serial_number),
  };
}
