/**
 * What both `vault` modes share: the HTTP client (TLS files read once at start), the token
 * keeper, the upstream health report, and the trust anchors from the mount's issuers, re-read
 * every `pollInterval` so a root rotation (a new default issuer) is noticed.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Clock, PluginMetrics } from "../../types.ts";
import { AnchorBook } from "../../sdk/anchor_book.ts";
import { requireRsa, sameDer, splitChain } from "../../sdk/ca_chain.ts";
import { UpstreamHealth } from "../../sdk/upstream_health.ts";
import type { VaultConfig } from "./config.ts";
import { listIssuers, readIssuer, type VaultIssuer } from "./pki.ts";
import { TokenKeeper } from "./token_keeper.ts";
import { VaultClient, VaultHttpError, type VaultTlsMaterial } from "./vault_client.ts";

/** What a session needs from the plugin context. */
export interface SessionDeps {
  clock: Clock;
  log: Logger;
  metrics?: PluginMetrics | undefined;
}

/** How to fix a non-RSA Vault chain, for error messages. */
export const RSA_FIX =
  "use an RSA issuer (e.g. `vault write <mount>/root/generate/internal key_type=rsa key_bits=2048`), " +
  "or set kernelDriver: false when no kernel module consumes the certificates";

async function readTls(config: VaultConfig): Promise<VaultTlsMaterial> {
  const t = config.tls;
  const read = async (path: string, what: string) => {
    try {
      return await Deno.readTextFile(path);
    } catch (e) {
      throw new Error(`Cannot read ${what} "${path}": ${(e as Error).message}`);
    }
  };
  const out: VaultTlsMaterial = { skipVerify: t.skipVerify };
  const ca: string[] = [];
  if (t.caCert) ca.push(await read(t.caCert, "tls.caCert (VAULT_CACERT)"));
  if (t.caPath) {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(t.caPath));
    } catch (e) {
      throw new Error(
        `Cannot read tls.caPath (VAULT_CAPATH) "${t.caPath}": ${(e as Error).message}`,
      );
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isFile && /\.(pem|crt)$/.test(e.name)) {
        ca.push(await read(`${t.caPath}/${e.name}`, "a CA file"));
      }
    }
  }
  if (ca.length > 0) out.ca = ca;
  if (t.clientCert) out.cert = await read(t.clientCert, "tls.clientCert (VAULT_CLIENT_CERT)");
  if (t.clientKey) out.key = await read(t.clientKey, "tls.clientKey (VAULT_CLIENT_KEY)");
  if (t.serverName) out.serverName = t.serverName;
  return out;
}

/** A connection to Vault with a kept-fresh token and anchor set. */
export class VaultSession {
  readonly config: VaultConfig;
  readonly client: VaultClient;
  readonly tokens: TokenKeeper;
  readonly health: UpstreamHealth;
  readonly anchors: AnchorBook;
  readonly deps: SessionDeps;
  /** The configured issuer as last read. */
  issuer: VaultIssuer | undefined;
  #lastPoll = -Infinity;
  #issuerCache = new Map<string, VaultIssuer>();
  #reportedDrops = "";

  private constructor(config: VaultConfig, client: VaultClient, deps: SessionDeps) {
    this.config = config;
    this.client = client;
    this.deps = deps;
    this.tokens = new TokenKeeper(client, config.auth, {
      clock: deps.clock,
      log: deps.log,
      metrics: deps.metrics,
      requestTimeoutMs: config.requestTimeoutMs,
    });
    this.health = new UpstreamHealth({
      ca: "vault",
      upstream: "Vault",
      log: deps.log,
      metrics: deps.metrics,
    });
    this.anchors = new AnchorBook({ rsaOnly: config.kernelDriver });
  }

  /**
   * Connects, gets a token and reads the issuer chain. Throws when Vault refuses or cannot be
   * reached, and ({@linkcode CapabilityError}) when the issuer chain is not RSA with the kernel driver.
   */
  static async open(
    config: VaultConfig,
    deps: SessionDeps,
    signal: AbortSignal,
  ): Promise<VaultSession> {
    const client = new VaultClient({
      address: config.address,
      ...(config.namespace ? { namespace: config.namespace } : {}),
      tls: await readTls(config),
    });
    const session = new VaultSession(config, client, deps);
    try {
      await session.tokens.start(signal);
      await session.poll(signal, { strict: true });
      deps.log.info("Connected to Vault", {
        address: config.address,
        mount: config.mount,
        issuer: config.issuer,
        mode: config.mode,
        ...(config.namespace ? { namespace: config.namespace } : {}),
        ...(config.fromEnv.length ? { fromEnv: config.fromEnv.join(",") } : {}),
      });
      return session;
    } catch (e) {
      client.close();
      throw e;
    }
  }

  #opts(signal: AbortSignal) {
    return { signal, timeoutMs: this.config.requestTimeoutMs };
  }

  /** Notes a failed Vault call (403 → the token keeper logs in again when it can). */
  failed(operation: string, error: unknown): void {
    if (error instanceof VaultHttpError && error.status === 403) this.tokens.forbidden();
    this.health.failure(operation, error, this.deps.clock.now());
  }

  /**
   * Re-reads the configured issuer and every issuer of the mount, and sets the `mount` anchors.
   * `strict` (at start): a non-RSA issuer chain throws instead of being left out.
   */
  async poll(signal: AbortSignal, options: { strict?: boolean } = {}): Promise<void> {
    const o = this.#opts(signal);
    const issuer = await readIssuer(this.client, this.config.mount, this.config.issuer, o);
    if (this.config.kernelDriver) {
      const chain = issuer.caChain.length > 0 ? issuer.caChain : [issuer.certificate];
      if (options.strict) {
        requireRsa(
          chain,
          `Vault issuer "${this.config.mount}/issuer/${this.config.issuer}"`,
          RSA_FIX,
        );
      }
    }
    const roots: Uint8Array[] = [];
    const own = await splitChain(issuer.caChain.length > 0 ? issuer.caChain : [issuer.certificate]);
    roots.push(...own.roots);
    let ids: string[] = [];
    try {
      ids = await listIssuers(this.client, this.config.mount, o);
    } catch (e) {
      this.deps.log.debug(
        "Cannot list the mount's issuers; trusting the configured issuer's roots",
        {
          error: (e as Error).message,
        },
      );
    }
    for (const id of ids) {
      let entry = this.#issuerCache.get(id);
      if (!entry) {
        entry = await readIssuer(this.client, this.config.mount, id, o);
        this.#issuerCache.set(id, entry);
      }
      if (entry.revoked) continue;
      roots.push(
        ...(await splitChain(entry.caChain.length > 0 ? entry.caChain : [entry.certificate])).roots,
      );
    }
    for (const id of [...this.#issuerCache.keys()]) {
      if (!ids.includes(id)) this.#issuerCache.delete(id);
    }
    const changed = this.issuer !== undefined &&
      !sameDer(this.issuer.certificate, issuer.certificate);
    this.issuer = issuer;
    this.anchors.set("mount", roots);
    this.#lastPoll = this.deps.clock.now();
    if (changed) {
      this.deps.log.warn("Vault's issuer changed (root rotation?)", { issuer: this.config.issuer });
    }
    this.reportDrops();
  }

  /** Logs roots left out of the anchors (non-RSA, expired) once per change. */
  reportDrops(): void {
    const { dropped } = this.anchors.current(this.deps.clock.now());
    const key = dropped.join("\n");
    if (key !== this.#reportedDrops && dropped.length > 0) {
      this.deps.log.warn("Leaving Vault roots out of the trust bundle", {
        roots: dropped.join("; "),
      });
    }
    this.#reportedDrops = key;
  }

  /** Token upkeep and, when due, the issuer poll. Never throws. */
  async maintain(signal: AbortSignal): Promise<void> {
    await this.tokens.maintain(signal);
    if (this.deps.clock.now() - this.#lastPoll < this.config.pollIntervalMs) return;
    try {
      await this.poll(signal);
      this.health.success();
    } catch (e) {
      this.#lastPoll = this.deps.clock.now();
      this.failed("read the Vault issuers", e);
    }
  }

  /** Forces the next {@linkcode maintain} to poll. */
  pollSoon(): void {
    this.#lastPoll = -Infinity;
  }

  /** Closes connections. */
  close(): void {
    this.client.close();
  }
}
