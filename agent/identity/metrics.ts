/**
 * The agent's process-wide metrics registry (the registry type itself is in plugins/sdk, where
 * plugins report into it too).
 *
 * @module
 */
import { MetricsRegistry } from "../../plugins/sdk/metrics.ts";

/** The agent's registry, for code that has no other way to reach one. */
export const agentMetrics: MetricsRegistry = new MetricsRegistry();
