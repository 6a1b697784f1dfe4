/**
 * How a CA plugin with an upstream (Vault, SPIRE) reports on it: whether the upstream answers,
 * how long the agent-held CA certificate has left, renewals by result. Logs state changes once
 * (not every retry) and keeps the same numbers as metrics when the agent passes a registry.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { HealthResult, PluginMetrics } from "../types.ts";
import { formatDuration } from "./duration.ts";

/** A snapshot for status pages and tests. */
export interface UpstreamStatus {
  up: boolean;
  /** Consecutive failures of upstream calls. */
  failures: number;
  lastError?: string;
  /** The agent-held CA certificate's notAfter (epoch ms). */
  signerNotAfter?: number;
  renewals: { ok: number; error: number };
}

/** Options for {@linkcode UpstreamHealth}. */
export interface UpstreamHealthOptions {
  /** The CA plugin's name, the `ca` label (`vault`, `spire`). */
  ca: string;
  /** What the upstream is called in logs (`Vault`, `the SPIRE server`). */
  upstream: string;
  log: Logger;
  metrics?: PluginMetrics | undefined;
  /** Repeated failures of one operation log at most this often (default 10 s). */
  quietMs?: number;
}

/** Tracks and reports an upstream's health. */
export class UpstreamHealth {
  #o: UpstreamHealthOptions;
  #status: UpstreamStatus = { up: true, failures: 0, renewals: { ok: 0, error: 0 } };
  #lastLog = new Map<string, number>();

  constructor(options: UpstreamHealthOptions) {
    this.#o = options;
    this.#gauge("camblet_ca_upstream_up", "1 when the CA's upstream answered its last call", 1);
  }

  #gauge(name: string, help: string, value: number) {
    this.#o.metrics?.gauge(name, help).set(value, { ca: this.#o.ca });
  }

  /** A call to the upstream succeeded. */
  success(): void {
    if (!this.#status.up) {
      this.#o.log.info(`${this.#o.upstream} answers again`, { failures: this.#status.failures });
    }
    this.#status.up = true;
    this.#status.failures = 0;
    delete this.#status.lastError;
    this.#gauge("camblet_ca_upstream_up", "1 when the CA's upstream answered its last call", 1);
  }

  /**
   * A call failed. Logs a warning with the time the current CA certificate has left (or an
   * error once it has expired); repeated failures log at most every `quietMs`.
   */
  failure(operation: string, error: unknown, now: number): void {
    const message = error instanceof Error ? error.message : String(error);
    const s = this.#status;
    s.up = false;
    s.failures++;
    s.lastError = message;
    this.#gauge("camblet_ca_upstream_up", "1 when the CA's upstream answered its last call", 0);
    this.#o.metrics?.counter(
      "camblet_ca_upstream_failures_total",
      "failed calls from a CA plugin to its upstream",
    ).inc({ ca: this.#o.ca, operation });
    const last = this.#lastLog.get(operation);
    if (s.failures > 1 && last !== undefined && now - last < (this.#o.quietMs ?? 10_000)) return;
    this.#lastLog.set(operation, now);
    const notAfter = s.signerNotAfter;
    const props: Record<string, unknown> = { operation, error: message, failures: s.failures };
    if (notAfter === undefined) {
      this.#o.log.error(`Cannot ${operation}: ${this.#o.upstream} failed`, props);
    } else if (now < notAfter) {
      this.#o.log.warn(
        `Cannot ${operation}; still signing with the current CA certificate ({timeLeft} left)`,
        {
          ...props,
          timeLeft: formatDuration(notAfter - now),
          notAfter: new Date(notAfter).toISOString(),
        },
      );
    } else {
      this.#o.log.error(
        `Cannot ${operation}, and the CA certificate expired: refusing to sign until ${this.#o.upstream} answers`,
        { ...props, notAfter: new Date(notAfter).toISOString() },
      );
    }
  }

  /** A renewal of the agent-held CA certificate ended. */
  renewal(result: "ok" | "error"): void {
    this.#status.renewals[result]++;
    this.#o.metrics?.counter(
      "camblet_ca_renewals_total",
      "renewals of the agent-held CA certificate by result",
    ).inc({ ca: this.#o.ca, result });
  }

  /** The agent-held CA certificate now in use, and the time for the seconds-left gauge. */
  signer(notAfter: number, now: number): void {
    this.#status.signerNotAfter = notAfter;
    this.tick(now);
  }

  /** Refreshes the seconds-left gauge. */
  tick(now: number): void {
    const n = this.#status.signerNotAfter;
    if (n === undefined) return;
    this.#gauge(
      "camblet_ca_signer_expiry_seconds",
      "seconds until the agent-held CA certificate expires",
      Math.max(0, Math.round((n - now) / 1000)),
    );
  }

  /**
   * What the CA plugin's `health()` answers: ok while the upstream answered its last call, else
   * not ok with the last error. (An intermediate-mode CA still signs while its upstream is down;
   * the agent reports that as down all the same, so that someone fixes it before it expires.)
   */
  result(): HealthResult {
    const s = this.#status;
    return s.lastError === undefined ? { ok: s.up } : { ok: s.up, message: s.lastError };
  }

  /** A copy of the status. */
  status(): UpstreamStatus {
    const s = this.#status;
    return { ...s, renewals: { ...s.renewals } };
  }
}
