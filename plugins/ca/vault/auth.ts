/**
 * Getting a Vault token: a static token (config, `VAULT_TOKEN`, a file), or a login with AppRole,
 * Kubernetes (the pod's service-account JWT) or a TLS client certificate; and `lookup-self` /
 * `renew-self` for its TTL. Secrets are read from files at each login (they rotate) and never
 * logged.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { readSecretFile } from "../../sdk/secret_file.ts";
import type { VaultAuthConfig } from "./config.ts";
import type { VaultBody, VaultClient } from "./vault_client.ts";

/** A token and what Vault said about its lifetime. */
export interface TokenGrant {
  token: string;
  /** 0 when the token never expires. */
  ttlMs: number;
  renewable: boolean;
}

/** Per-request limits. */
export interface AuthRequestOptions {
  signal: AbortSignal;
  timeoutMs: number;
}

// Secret files warn (once) when others can read them; the service-account token is exempt
// (Kubernetes projects it 0644).
const log = getLogger(["camblet", "plugin", "ca", "vault"]);

async function secret(
  value: string | undefined,
  file: string | undefined,
  what: string,
  checkMode = true,
) {
  if (value !== undefined) return value;
  if (file === undefined) return undefined;
  return await readSecretFile(file, what, checkMode ? log : undefined);
}

/** The static token of the `token` method (re-read from `tokenFile` each time). */
export async function staticToken(auth: VaultAuthConfig): Promise<string> {
  const token = await secret(auth.token, auth.tokenFile, "the Vault token");
  if (!token) throw new Error("Cannot log in to Vault: the token is empty");
  return token;
}

function grantOf(body: VaultBody, what: string): TokenGrant {
  const a = body.auth as VaultBody | undefined;
  if (typeof a?.client_token !== "string" || a.client_token === "") {
    throw new Error(`Cannot ${what}: Vault's answer has no client token`);
  }
  return {
    token: a.client_token,
    ttlMs: Number(a.lease_duration ?? 0) * 1000,
    renewable: a.renewable === true,
  };
}

/** Logs in with the configured method (not `token`); returns the new token. */
export async function login(
  client: VaultClient,
  auth: VaultAuthConfig,
  o: AuthRequestOptions,
): Promise<TokenGrant> {
  let body: Record<string, unknown>;
  switch (auth.method) {
    case "approle": {
      body = { role_id: await secret(auth.roleId, auth.roleIdFile, "the AppRole role_id") };
      const secretId = await secret(auth.secretId, auth.secretIdFile, "the AppRole secret_id");
      if (secretId !== undefined) body.secret_id = secretId;
      break;
    }
    case "kubernetes":
      body = {
        role: auth.role,
        jwt: await secret(undefined, auth.jwtFile, "the service-account token", false),
      };
      break;
    case "cert":
      body = auth.role !== undefined ? { name: auth.role } : {};
      break;
    default:
      throw new TypeError(`Cannot log in with method "${auth.method}"`);
  }
  const res = await client.request("POST", `auth/${auth.mount}/login`, {
    body,
    token: null,
    signal: o.signal,
    timeoutMs: o.timeoutMs,
  });
  return grantOf(res, `log in to Vault with ${auth.method} at auth/${auth.mount}`);
}

/** `auth/token/lookup-self`: the current token's remaining TTL. */
export async function lookupSelf(
  client: VaultClient,
  token: string,
  o: AuthRequestOptions,
): Promise<TokenGrant> {
  const res = await client.request("GET", "auth/token/lookup-self", { ...o, token });
  const d = res.data as VaultBody | undefined;
  return { token, ttlMs: Number(d?.ttl ?? 0) * 1000, renewable: d?.renewable === true };
}

/** `auth/token/renew-self`: extends the current token. */
export async function renewSelf(client: VaultClient, o: AuthRequestOptions): Promise<TokenGrant> {
  const res = await client.request("POST", "auth/token/renew-self", { ...o, body: {} });
  return grantOf(res, "renew the Vault token");
}
