/**
 * The `vault` CA's config and its one pure parser (shared by `run` and `validate`). The usual
 * `VAULT_*` environment variables are honoured and, as in Vault Agent, win over the config file;
 * the parser takes the environment as an argument so it stays pure.
 *
 * @module
 */
import { z } from "zod";
import { durationMs, zodProblems } from "../../sdk/config.ts";
import type { ConfigProblem, ParseResult } from "../../types.ts";

const HOUR = 3_600_000;

const authSchema = z.object({
  method: z.enum(["token", "approle", "kubernetes", "cert"]).default("token"),
  /** Where the auth method is mounted (default: the method's name). */
  mount: z.string().min(1).optional(),
  token: z.string().min(1).optional(),
  tokenFile: z.string().min(1).optional(),
  roleId: z.string().min(1).optional(),
  roleIdFile: z.string().min(1).optional(),
  secretId: z.string().min(1).optional(),
  secretIdFile: z.string().min(1).optional(),
  /** Kubernetes role; for `cert`, the certificate role name (optional). */
  role: z.string().min(1).optional(),
  jwtFile: z.string().min(1).default("/var/run/secrets/kubernetes.io/serviceaccount/token"),
}).strict();

const tlsSchema = z.object({
  caCert: z.string().min(1).optional(),
  caPath: z.string().min(1).optional(),
  clientCert: z.string().min(1).optional(),
  clientKey: z.string().min(1).optional(),
  serverName: z.string().min(1).optional(),
  skipVerify: z.boolean().default(false),
}).strict();

const schema = z.object({
  address: z.string().optional(),
  namespace: z.string().min(1).optional(),
  mount: z.string().regex(/^[^/].*[^/]$|^[^/]$/, "must not start or end with /").default("pki"),
  mode: z.enum(["intermediate", "leaf"]).default("intermediate"),
  /** The issuer that signs (`default` or an issuer id/name in the mount). */
  issuer: z.string().min(1).default("default"),
  auth: authSchema.default(authSchema.parse({})),
  tls: tlsSchema.default(tlsSchema.parse({})),
  intermediate: z.object({
    /** Default `Camblet agent CA <hostname>`. */
    commonName: z.string().min(1).optional(),
    ttl: durationMs.default(72 * HOUR),
    keySize: z.union([z.literal(2048), z.literal(3072), z.literal(4096)], {
      error: "must be 2048, 3072 or 4096",
    }).default(2048),
  }).strict().default({ ttl: 72 * HOUR, keySize: 2048 }),
  leaf: z.object({
    role: z.string().min(1).optional(),
    /** The whole Vault round trip per CSR; the kernel waits 1 s for everything. */
    timeout: durationMs.default(400),
  }).strict().default({ timeout: 400 }),
  maxTtl: durationMs.default(24 * HOUR),
  backdate: durationMs.default(120_000),
  /** How often the issuer chain is re-read (root rotation, new anchors). */
  pollInterval: durationMs.default(300_000),
  /** How often renewals (token, intermediate) are considered. */
  checkInterval: durationMs.default(30_000),
  /** Timeout of background requests (login, renewals, polls). */
  requestTimeout: durationMs.default(10_000),
  /** Driving camblet-driver: every certificate of the CA chain must be RSA. */
  kernelDriver: z.boolean().default(true),
}).strict();

/** How the agent logs in to Vault. */
export interface VaultAuthConfig {
  method: "token" | "approle" | "kubernetes" | "cert";
  mount: string;
  token?: string;
  tokenFile?: string;
  roleId?: string;
  roleIdFile?: string;
  secretId?: string;
  secretIdFile?: string;
  role?: string;
  jwtFile: string;
}

/** TLS to Vault: file paths, read when the plugin starts. */
export interface VaultTlsConfig {
  caCert?: string;
  caPath?: string;
  clientCert?: string;
  clientKey?: string;
  serverName?: string;
  skipVerify: boolean;
}

/** Parsed `vault` config; durations in milliseconds. */
export interface VaultConfig {
  address: string;
  namespace?: string;
  mount: string;
  mode: "intermediate" | "leaf";
  issuer: string;
  auth: VaultAuthConfig;
  tls: VaultTlsConfig;
  intermediate: { commonName?: string; ttlMs: number; keySize: 2048 | 3072 | 4096 };
  leaf: { role?: string; timeoutMs: number };
  maxTtlMs: number;
  backdateMs: number;
  pollIntervalMs: number;
  checkIntervalMs: number;
  requestTimeoutMs: number;
  kernelDriver: boolean;
  /** Which settings came from `VAULT_*` variables (names only, for the start-up log). */
  fromEnv: string[];
}

/** The `VAULT_*` variables read, and where each goes. */
export const VAULT_ENV: Readonly<Record<string, string>> = {
  VAULT_ADDR: "address",
  VAULT_NAMESPACE: "namespace",
  VAULT_TOKEN: "auth.token",
  VAULT_CACERT: "tls.caCert",
  VAULT_CAPATH: "tls.caPath",
  VAULT_CLIENT_CERT: "tls.clientCert",
  VAULT_CLIENT_KEY: "tls.clientKey",
  VAULT_TLS_SERVER_NAME: "tls.serverName",
  VAULT_SKIP_VERIFY: "tls.skipVerify",
};

function truthy(v: string): boolean {
  return /^(1|t|true|yes|on)$/i.test(v.trim());
}

/** Overlays the environment on the raw config (env wins, as in Vault Agent). */
function withEnv(raw: Record<string, unknown>, env: Record<string, string | undefined>) {
  const out: Record<string, unknown> = { ...raw };
  const auth = { ...(out.auth as Record<string, unknown> | undefined) };
  const tls = { ...(out.tls as Record<string, unknown> | undefined) };
  const fromEnv: string[] = [];
  for (const [name, target] of Object.entries(VAULT_ENV)) {
    const v = env[name];
    if (v === undefined || v === "") continue;
    const [group, key] = target.includes(".")
      ? target.split(".") as [string, string]
      : ["", target];
    if (name === "VAULT_TOKEN" && (auth.method ?? "token") !== "token") continue;
    const value = name === "VAULT_SKIP_VERIFY" ? truthy(v) : v;
    if (group === "auth") auth[key] = value;
    else if (group === "tls") tls[key] = value;
    else out[key] = value;
    fromEnv.push(name);
  }
  if (Object.keys(auth).length > 0) out.auth = auth;
  if (Object.keys(tls).length > 0) out.tls = tls;
  return { merged: out, fromEnv };
}

function crossChecks(v: z.output<typeof schema>, address: URL | undefined): ConfigProblem[] {
  const p: ConfigProblem[] = [];
  const a = v.auth;
  if (a.method === "token" && !a.token && !a.tokenFile) {
    p.push({
      field: "auth.token",
      message: "required: set VAULT_TOKEN, auth.token or auth.tokenFile",
    });
  }
  if (a.method === "approle" && !a.roleId && !a.roleIdFile) {
    p.push({
      field: "auth.roleId",
      message: "required for approle: set auth.roleId or auth.roleIdFile",
    });
  }
  if (a.method === "kubernetes" && !a.role) {
    p.push({ field: "auth.role", message: "required for kubernetes: the Vault role to log in as" });
  }
  if (a.method === "cert" && (!v.tls.clientCert || !v.tls.clientKey)) {
    p.push({
      field: "tls.clientCert",
      message:
        "required for cert auth: set tls.clientCert and tls.clientKey (VAULT_CLIENT_CERT, VAULT_CLIENT_KEY)",
    });
  }
  if (a.method === "cert" && address && address.protocol !== "https:") {
    p.push({ field: "address", message: "cert auth needs an https:// address" });
  }
  if (!!v.tls.clientCert !== !!v.tls.clientKey) {
    p.push({
      field: v.tls.clientCert ? "tls.clientKey" : "tls.clientCert",
      message: "tls.clientCert and tls.clientKey go together",
    });
  }
  if (v.mode === "leaf" && !v.leaf.role) {
    p.push({
      field: "leaf.role",
      message: 'required in mode "leaf": the role of <mount>/sign/<role>',
    });
  }
  if (v.leaf.timeout >= 1000) {
    p.push({
      field: "leaf.timeout",
      message: "must be under 1s (the kernel waits 1 s for an answer)",
    });
  }
  if (v.backdate > HOUR) p.push({ field: "backdate", message: "must be at most 1h" });
  return p;
}

/**
 * Parses `plugins.ca.vault` with the `VAULT_*` variables of `env` overlaid. Pure; reports every
 * problem at once.
 *
 * @example
 * ```ts
 * import { parseVaultConfig } from "./config.ts";
 * const r = parseVaultConfig({}, { VAULT_ADDR: "http://127.0.0.1:8200", VAULT_TOKEN: "t" });
 * r.ok && r.value.mount; // "pki"
 * r.ok && r.value.mode; // "intermediate"
 * ```
 */
export function parseVaultConfig(
  raw: unknown,
  env: Record<string, string | undefined> = {},
): ParseResult<VaultConfig> {
  if (raw !== undefined && raw !== null && (typeof raw !== "object" || Array.isArray(raw))) {
    return { ok: false, problems: [{ field: "", message: "must be a mapping" }] };
  }
  const { merged, fromEnv } = withEnv((raw ?? {}) as Record<string, unknown>, env);
  const r = schema.safeParse(merged);
  const problems: ConfigProblem[] = r.success ? [] : zodProblems(r.error);
  let address: URL | undefined;
  const rawAddress = merged.address;
  if (rawAddress === undefined || rawAddress === "") {
    problems.push({
      field: "address",
      message: "required: set VAULT_ADDR or plugins.ca.vault.address",
    });
  } else if (typeof rawAddress === "string") {
    try {
      address = new URL(rawAddress);
      if (address.protocol !== "http:" && address.protocol !== "https:") {
        problems.push({
          field: "address",
          message: `Cannot use "${rawAddress}": not http:// or https://`,
        });
      }
    } catch {
      problems.push({ field: "address", message: `Cannot parse URL "${rawAddress}"` });
    }
  }
  if (r.success) problems.push(...crossChecks(r.data, address));
  if (!r.success || problems.length > 0 || !address) return { ok: false, problems };
  const v = r.data;
  const auth: VaultAuthConfig = {
    method: v.auth.method,
    mount: v.auth.mount ?? v.auth.method,
    jwtFile: v.auth.jwtFile,
  };
  for (
    const k of [
      "token",
      "tokenFile",
      "roleId",
      "roleIdFile",
      "secretId",
      "secretIdFile",
      "role",
    ] as const
  ) {
    if (v.auth[k] !== undefined) auth[k] = v.auth[k];
  }
  const tls: VaultTlsConfig = { skipVerify: v.tls.skipVerify };
  for (const k of ["caCert", "caPath", "clientCert", "clientKey", "serverName"] as const) {
    if (v.tls[k] !== undefined) tls[k] = v.tls[k];
  }
  const value: VaultConfig = {
    address: address.href.replace(/\/+$/, ""),
    mount: v.mount,
    mode: v.mode,
    issuer: v.issuer,
    auth,
    tls,
    intermediate: { ttlMs: v.intermediate.ttl, keySize: v.intermediate.keySize },
    leaf: { timeoutMs: v.leaf.timeout },
    maxTtlMs: v.maxTtl,
    backdateMs: v.backdate,
    pollIntervalMs: v.pollInterval,
    checkIntervalMs: v.checkInterval,
    requestTimeoutMs: v.requestTimeout,
    kernelDriver: v.kernelDriver,
    fromEnv,
  };
  if (v.namespace !== undefined) value.namespace = v.namespace;
  if (v.intermediate.commonName !== undefined) {
    value.intermediate.commonName = v.intermediate.commonName;
  }
  if (v.leaf.role !== undefined) value.leaf.role = v.leaf.role;
  return { ok: true, value };
}
