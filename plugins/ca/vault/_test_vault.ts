/**
 * Test support for the `vault` plugin: a real Vault dev server (OpenBao's API, see
 * tests/peers/README.md) with a PKI mount, an RSA root and a leaf role, and configs for it.
 *
 * @module
 */
import {
  enablePki,
  type PkiRoot,
  startVault,
  vaultRequest,
  type VaultServer,
} from "../../../tests/peers/mod.ts";
import { ensurePeer } from "../../../tests/peers/mod.ts";
import { freePort, spawnLogged, waitFor } from "../../../tests/peers/_process.ts";
import { getLogger } from "@logtape/logtape";
import { VaultClient } from "./vault_client.ts";
import { parseVaultConfig, type VaultConfig } from "./config.ts";

/** The capture's trust domain. */
export const TD = "acme.test";

/** The leaf-mode role the tests and README use. */
export const LEAF_ROLE = {
  allow_any_name: true,
  enforce_hostnames: false,
  allowed_uri_sans: `spiffe://${TD}/*`,
  use_csr_sans: false,
  use_csr_common_name: true,
  require_cn: false,
  key_usage: "DigitalSignature,KeyEncipherment",
  ext_key_usage: "",
  server_flag: true,
  client_flag: true,
  max_ttl: "24h",
  basic_constraints_valid_for_non_ca: true,
  no_store: true,
};

/** A Vault with `pki` mounted (RSA root) and the role `camblet`. */
export interface PkiVault {
  vault: VaultServer;
  root: PkiRoot;
}

/** Starts Vault and sets up `mount` (default `pki`). */
export async function startPkiVault(mount = "pki"): Promise<PkiVault> {
  const vault = await startVault();
  try {
    const root = await setUpPki(vault, mount);
    return { vault, root };
  } catch (e) {
    await vault.stop();
    throw e;
  }
}

/** Mounts PKI at `mount` with an RSA root and the `camblet` role. */
export async function setUpPki(
  vault: VaultServer,
  mount: string,
  keyType: "rsa" | "ec" = "rsa",
): Promise<PkiRoot> {
  const root = await enablePki(vault, { mount, rootCN: `Test Root ${mount}`, keyType });
  await vaultRequest(vault, "POST", `${mount}/roles/camblet`, LEAF_ROLE);
  return root;
}

/** A parsed config for `vault` (env VAULT_ADDR/VAULT_TOKEN from it); throws on problems. */
export function vaultConfig(
  vault: { address: string; rootToken?: string },
  raw: Record<string, unknown> = {},
  env: Record<string, string> = {},
): VaultConfig {
  const r = parseVaultConfig(raw, {
    VAULT_ADDR: vault.address,
    ...(vault.rootToken ? { VAULT_TOKEN: vault.rootToken } : {}),
    ...env,
  });
  if (!r.ok) throw new Error(`Cannot parse test config: ${JSON.stringify(r.problems)}`);
  return r.value;
}

/** The plugin's logger in tests. */
export const testLog = getLogger(["camblet", "plugin", "ca", "vault"]);

/** Creates a token with `policies` (and a TTL) using the root token. */
export async function createToken(
  vault: VaultServer,
  options: { policies: string[]; ttl?: string; renewable?: boolean },
): Promise<string> {
  const res = await vaultRequest(vault, "POST", "auth/token/create", {
    policies: options.policies,
    ...(options.ttl ? { ttl: options.ttl } : {}),
    renewable: options.renewable ?? true,
    no_default_policy: false,
  });
  return String((res.auth as Record<string, unknown>).client_token);
}

/** A policy that may sign intermediates and leaves on `mount`. */
export async function writeSignerPolicy(vault: VaultServer, name: string, mount = "pki") {
  await vaultRequest(vault, "PUT", `sys/policies/acl/${name}`, {
    policy: `path "${mount}/root/sign-intermediate" { capabilities = ["update"] }
path "${mount}/issuer/+/sign-intermediate" { capabilities = ["update"] }
path "${mount}/sign/camblet" { capabilities = ["update"] }
`,
  });
}

/** A Vault dev server on TLS (`-dev-tls`): its generated CA is `caPath`. */
export interface TlsVault extends VaultServer {
  /** PEM file of the CA that signed the listener's certificate. */
  caPath: string;
}

/**
 * Starts `vault server -dev -dev-tls` on a free loopback port (the listener requests client
 * certificates, so the `cert` auth method works).
 */
export async function startTlsVault(): Promise<TlsVault> {
  const bin = await ensurePeer("vault");
  const dir = await Deno.makeTempDir({ prefix: "camblet-vault-tls-" });
  const port = freePort();
  const rootToken = `camblet-root-${crypto.randomUUID()}`;
  const address = `https://127.0.0.1:${port}`;
  const proc = await spawnLogged(bin, [
    "server",
    "-dev",
    "-dev-tls",
    `-dev-tls-cert-dir=${dir}`,
    `-dev-listen-address=127.0.0.1:${port}`,
    `-dev-root-token-id=${rootToken}`,
    "-dev-no-store-token",
  ], {
    logPath: `${dir}/vault.log`,
    cwd: dir,
    env: { HOME: dir, PATH: Deno.env.get("PATH") ?? "" },
    clearEnv: true,
  });
  const stop = async () => {
    await proc.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const caPath = `${dir}/vault-ca.pem`;
    const version = await waitFor("vault -dev-tls", async () => {
      const ca = await Deno.readTextFile(caPath);
      const client = new VaultClient({ address, tls: { ca: [ca] } });
      try {
        const h = await client.request("GET", "sys/health", { timeoutMs: 2000, token: null });
        return String(h.version);
      } finally {
        client.close();
      }
    }, { timeoutMs: 30_000, exited: proc.child.status });
    return {
      address,
      rootToken,
      version,
      logPath: proc.logPath,
      pid: proc.child.pid,
      caPath,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}
