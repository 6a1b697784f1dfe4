/**
 * The plugin contract (SPIRE's catalog, Hono's factories): a plugin is a kind, a name, ONE pure
 * config parser shared by `run` and `validate`, and a factory. Plugins import only this file and
 * `plugins/sdk/`, never agent internals.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { TaskContext } from "../driver/payloads.ts";

export type { TaskContext };

/** Plugin kinds and how many of each a running agent has. */
export const PLUGIN_KINDS = {
  ca: { cardinality: "exactly-one" },
  policySource: { cardinality: "at-least-one" },
  attestor: { cardinality: "any" },
} as const;

/** A plugin kind. */
export type PluginKind = keyof typeof PLUGIN_KINDS;

/** Time, injected so that rotation and expiry are testable; never call `Date.now()` in a plugin. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** The real clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** A config problem found by a plugin's parser; `field` is relative to the plugin's config. */
export interface ConfigProblem {
  field: string;
  message: string;
}

/** Result of a plugin's pure config parser: a value or every problem at once. */
export type ParseResult<C> = { ok: true; value: C } | { ok: false; problems: ConfigProblem[] };

/** What the agent hands a plugin when creating it. */
export interface PluginContext {
  /** Scoped logger (`camblet.plugin.<kind>.<name>`). */
  log: Logger;
  clock: Clock;
  /** The agent's SPIFFE trust domain. */
  trustDomain: string;
  /** Aborted when the agent shuts down. */
  signal: AbortSignal;
  /** The agent's version, sent to external plugins in the handshake. */
  agentVersion?: string;
  /** Where a plugin reports its own metrics (the agent's registry); absent in tests and tools. */
  metrics?: PluginMetrics;
}

/** Label values of one metric series. */
export type MetricLabels = Record<string, string>;

/**
 * The metrics a plugin may report (served on the agent's `/metrics`). Names start with `camblet_`.
 * The agent's `MetricsRegistry` implements it.
 */
export interface PluginMetrics {
  counter(name: string, help: string): { inc(labels?: MetricLabels, n?: number): void };
  gauge(name: string, help: string): { set(value: number, labels?: MetricLabels): void };
}

/** What a plugin says about its health (`plugin.health` for external plugins). */
export interface HealthResult {
  ok: boolean;
  /** Why it is not ok (shown by `camblet-agent status`); may also describe an ok state. */
  message?: string;
}

/** Anything a plugin creates can hold resources; the loader disposes them in reverse order. */
export interface PluginInstance {
  /**
   * Whether the plugin can do its job right now. The agent asks right after start and every 15 s,
   * with a signal that aborts after 2 s, and reports the answer as `camblet_plugin_up` and in
   * `camblet-agent status`. Must be cheap (report known state, do not probe the backend on every
   * call) and should not throw: say what is wrong in `message`. A plugin without it is up while
   * it is loaded.
   */
  health?(signal: AbortSignal): Promise<HealthResult> | HealthResult;
  /** Releases sockets, timers, child processes. Must not throw. */
  dispose?(): Promise<void> | void;
}

/** A plugin definition: what {@linkcode definePlugin} returns and the registry lists. */
export interface PluginDefinition<K extends PluginKind, C, I extends PluginInstance> {
  kind: K;
  name: string;
  /** One line for `--help` and `camblet-agent plugins`. */
  description: string;
  /** Pure: no I/O. Reports every problem at once and flags unknown keys. */
  parseConfig(raw: unknown): ParseResult<C>;
  create(config: C, ctx: PluginContext): Promise<I> | I;
}

/**
 * Defines a plugin. The identity function gives type inference and one place to check shape.
 *
 * @example
 * ```ts
 * import { definePlugin } from "./types.ts";
 * const hostname = definePlugin({
 *   kind: "attestor",
 *   name: "hostname",
 *   description: "labels the host name",
 *   parseConfig: () => ({ ok: true, value: {} }),
 *   create: () => ({
 *     name: "hostname",
 *     collect: () => Promise.resolve({ "host:name": [Deno.hostname()] }),
 *   }),
 * });
 * ```
 */
export function definePlugin<K extends PluginKind, C, I extends PluginInstance>(
  def: PluginDefinition<K, C, I>,
): PluginDefinition<K, C, I> {
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(def.name)) {
    throw new TypeError(`Cannot define plugin "${def.name}": name must match [a-z0-9][a-z0-9_-]*`);
  }
  return def;
}

/** Labels of a process: label name → values (most have one; `process:gid:additional` has many). */
export type Labels = Record<string, string[]>;

/** The attestor kind: collects labels for the process the kernel asks about. */
export interface Attestor extends PluginInstance {
  readonly name: string;
  /**
   * Labels for `task`. Must honour `signal` (the agent's deadline budget) and must not throw for a
   * process that has exited: return what is known. Label names are `segment:…:key`. `facts`
   * (optional, may be ignored) is what the agent read of the task just before.
   */
  collect(task: TaskContext, signal: AbortSignal, facts?: CollectFacts): Promise<Labels>;
}

/**
 * What the agent read about a task just before asking the attestors, so that they need not read
 * it again (under a burst every /proc read is main-thread time, a failed one too).
 */
export interface CollectFacts {
  /**
   * `/proc/<pid>/stat` start time (clock ticks since boot), read before `collect` was called;
   * `null`: the process was gone then. A pid may be reused after it: check it again at the end.
   */
  readonly startTime: number | null;
}
