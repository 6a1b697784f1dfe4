/**
 * Counters of the proxy data plane: connections per direction, policy and outcome, bytes per
 * direction, and the connections open now. Cheap enough for the hot path (one Map update).
 *
 * @module
 */
import type { Outcome } from "./types.ts";

/** One connection counter. */
export interface ConnectionCount {
  direction: "input" | "output";
  outcome: Outcome;
  /** `policy-id` or `policy-id/egress-id`; empty when no policy matched. */
  policy: string;
  count: number;
}

/** A point-in-time copy of the counters. */
export interface MetricsSnapshot {
  connections: ConnectionCount[];
  /** Connections being relayed now. */
  active: number;
  /** Bytes relayed (both ways) on outbound (`output`) and inbound (`input`) connections. */
  bytes: { input: number; output: number };
}

/** The counters; one instance per data plane. */
export class ProxyMetrics {
  #counts = new Map<string, ConnectionCount>();
  #active = 0;
  #bytes = { input: 0, output: 0 };

  /** Counts one finished setup of a connection. */
  count(direction: "input" | "output", outcome: Outcome, policy = ""): void {
    const key = `${direction}\0${outcome}\0${policy}`;
    const c = this.#counts.get(key);
    if (c) c.count++;
    else this.#counts.set(key, { direction, outcome, policy, count: 1 });
  }

  /** Adds relayed bytes. */
  addBytes(direction: "input" | "output", n: number): void {
    this.#bytes[direction] += n;
  }

  /** A relay started (+1) or ended (-1). */
  activeDelta(d: 1 | -1): void {
    this.#active += d;
  }

  /** The number of connections counted with `outcome` (all directions and policies). */
  total(outcome?: Outcome, direction?: "input" | "output"): number {
    let n = 0;
    for (const c of this.#counts.values()) {
      if (
        (outcome === undefined || c.outcome === outcome) &&
        (direction === undefined || c.direction === direction)
      ) n += c.count;
    }
    return n;
  }

  /** A copy of every counter. */
  snapshot(): MetricsSnapshot {
    return {
      connections: [...this.#counts.values()].map((c) => ({ ...c })),
      active: this.#active,
      bytes: { ...this.#bytes },
    };
  }

  /** Prometheus text exposition of {@linkcode snapshot}. */
  toPrometheus(): string {
    const esc = (s: string) => s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
    const lines = [
      "# HELP camblet_proxy_connections_total Connections handled by the proxy data plane.",
      "# TYPE camblet_proxy_connections_total counter",
    ];
    for (const c of this.#counts.values()) {
      lines.push(
        `camblet_proxy_connections_total{direction="${c.direction}",outcome="${c.outcome}",` +
          `policy="${esc(c.policy)}"} ${c.count}`,
      );
    }
    lines.push(
      "# HELP camblet_proxy_active_connections Connections being relayed.",
      "# TYPE camblet_proxy_active_connections gauge",
      `camblet_proxy_active_connections ${this.#active}`,
      "# HELP camblet_proxy_bytes_total Bytes relayed, both ways, per connection direction.",
      "# TYPE camblet_proxy_bytes_total counter",
      `camblet_proxy_bytes_total{direction="input"} ${this.#bytes.input}`,
      `camblet_proxy_bytes_total{direction="output"} ${this.#bytes.output}`,
    );
    return lines.join("\n") + "\n";
  }
}
