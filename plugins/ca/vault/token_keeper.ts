/**
 * Keeps the agent's Vault token usable: gets it at start (static token + `lookup-self`, or a
 * login), renews it at half its TTL, logs in again when it cannot be renewed or Vault refuses it,
 * and picks up a rewritten token file (e.g. from Vault Agent's sink). Decisions come from
 * {@linkcode planToken}; failures never throw out of {@linkcode TokenKeeper.maintain}.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { Clock, PluginMetrics } from "../../types.ts";
import { formatDuration } from "../../sdk/duration.ts";
import { login, lookupSelf, renewSelf, staticToken, type TokenGrant } from "./auth.ts";
import type { VaultAuthConfig } from "./config.ts";
import type { VaultClient } from "./vault_client.ts";
import { planToken } from "./token_plan.ts";

/** Options for {@linkcode TokenKeeper}. */
export interface TokenKeeperOptions {
  clock: Clock;
  log: Logger;
  metrics?: PluginMetrics | undefined;
  requestTimeoutMs: number;
}

/** What the keeper knows about the token (never the token itself). */
export interface TokenStatus {
  method: VaultAuthConfig["method"];
  /** Epoch ms; absent for a token without TTL. */
  expiresAt?: number;
  renewable: boolean;
  renewals: number;
  logins: number;
  failures: number;
}

/** Owns `client.token`. */
export class TokenKeeper {
  #client: VaultClient;
  #auth: VaultAuthConfig;
  #o: TokenKeeperOptions;
  #obtainedAt = 0;
  #grant: TokenGrant | undefined;
  #forbidden = false;
  #failures = 0;
  #lastFailureAt: number | undefined;
  #renewals = 0;
  #logins = 0;
  #reported: string | undefined;

  constructor(client: VaultClient, auth: VaultAuthConfig, options: TokenKeeperOptions) {
    this.#client = client;
    this.#auth = auth;
    this.#o = options;
  }

  get #canLogin(): boolean {
    return this.#auth.method !== "token";
  }

  #adopt(grant: TokenGrant): void {
    this.#grant = grant;
    this.#client.token = grant.token;
    this.#obtainedAt = this.#o.clock.now();
    this.#forbidden = false;
    this.#failures = 0;
    this.#lastFailureAt = undefined;
    this.#o.metrics?.gauge(
      "camblet_ca_vault_token_expiry_seconds",
      "seconds until the Vault token expires as last learned (0: no expiry)",
    ).set(Math.round(grant.ttlMs / 1000), { ca: "vault" });
  }

  /** Gets the first token; throws when Vault refuses it or cannot be reached. */
  async start(signal: AbortSignal): Promise<void> {
    const o = { signal, timeoutMs: this.#o.requestTimeoutMs };
    if (this.#canLogin) {
      this.#adopt(await login(this.#client, this.#auth, o));
      this.#logins++;
      this.#o.log.info("Logged in to Vault", this.#brief());
    } else {
      const token = await staticToken(this.#auth);
      this.#adopt(await lookupSelf(this.#client, token, o));
      this.#o.log.info("Using a Vault token", this.#brief());
    }
  }

  #brief() {
    const g = this.#grant;
    return {
      method: this.#auth.method,
      ttl: g && g.ttlMs > 0 ? formatDuration(g.ttlMs) : "none",
      renewable: g?.renewable ?? false,
    };
  }

  /** A request was refused with 403: the next {@linkcode maintain} logs in again if it can. */
  forbidden(): void {
    this.#forbidden = true;
  }

  /** Renews, logs in or re-reads the token file when due. Never throws. */
  async maintain(signal: AbortSignal): Promise<void> {
    const now = this.#o.clock.now();
    if (this.#auth.method === "token" && this.#auth.tokenFile && this.#auth.token === undefined) {
      if (await this.#rereadFile(signal)) return;
    }
    const g = this.#grant;
    if (!g) return;
    const plan = planToken({
      now,
      obtainedAt: this.#obtainedAt,
      ttlMs: g.ttlMs,
      renewable: g.renewable,
      canLogin: this.#canLogin,
      forbidden: this.#forbidden,
      failures: this.#failures,
      ...(this.#lastFailureAt !== undefined ? { lastFailureAt: this.#lastFailureAt } : {}),
    });
    if (plan.problem && this.#reported !== plan.problem) {
      this.#reported = plan.problem;
      this.#o.log.error("Vault token: {problem}", {
        problem: plan.problem,
        method: this.#auth.method,
      });
    }
    if (plan.action === "none") return;
    const o = { signal, timeoutMs: this.#o.requestTimeoutMs };
    try {
      if (plan.action === "renew") {
        this.#adopt(await renewSelf(this.#client, o));
        this.#renewals++;
        this.#o.log.debug("Renewed the Vault token", this.#brief());
      } else {
        this.#adopt(await login(this.#client, this.#auth, o));
        this.#logins++;
        this.#o.log.info("Logged in to Vault again", { reason: plan.reason, ...this.#brief() });
      }
      this.#reported = undefined;
    } catch (e) {
      this.#failures++;
      this.#lastFailureAt = this.#o.clock.now();
      this.#o.log.warn(`Cannot ${plan.action} the Vault token`, {
        reason: plan.reason,
        error: (e as Error).message,
        failures: this.#failures,
        ...(plan.expiresAt !== undefined
          ? { expiresIn: formatDuration(Math.max(0, plan.expiresAt - now)) }
          : {}),
      });
    }
  }

  async #rereadFile(signal: AbortSignal): Promise<boolean> {
    let token: string;
    try {
      token = await staticToken(this.#auth);
    } catch (e) {
      this.#o.log.warn("Cannot re-read the Vault token file", { error: (e as Error).message });
      return false;
    }
    if (token === this.#grant?.token) return false;
    try {
      this.#adopt(
        await lookupSelf(this.#client, token, { signal, timeoutMs: this.#o.requestTimeoutMs }),
      );
      this.#o.log.info("Using the new token from the token file", this.#brief());
      return true;
    } catch (e) {
      this.#o.log.warn("Cannot use the new token from the token file; keeping the current one", {
        error: (e as Error).message,
      });
      return false;
    }
  }

  /** The token's state. */
  status(): TokenStatus {
    const g = this.#grant;
    const s: TokenStatus = {
      method: this.#auth.method,
      renewable: g?.renewable ?? false,
      renewals: this.#renewals,
      logins: this.#logins,
      failures: this.#failures,
    };
    if (g && g.ttlMs > 0) s.expiresAt = this.#obtainedAt + g.ttlMs;
    return s;
  }
}
