/**
 * The agent's view of its plugins' health: every loaded plugin's `health()` is asked right after
 * start and then every 15 s, each answer bounded by 2 s, rounds never overlapping. The last answer
 * is what `camblet_plugin_up` and `camblet-agent status` show; each change of state is logged once.
 * A plugin without `health()` is up while it is loaded.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import {
  type Clock,
  type HealthResult,
  type PluginInstance,
  type PluginKind,
  systemClock,
} from "../../plugins/types.ts";
import { logger } from "../log.ts";
import { errorMessage } from "../errors.ts";

/** A loaded plugin to watch. */
export interface WatchedPlugin {
  kind: PluginKind;
  name: string;
  instance: PluginInstance;
}

/** The last health answer of one plugin. */
export interface PluginHealthEntry {
  up: boolean;
  message?: string;
  /** When the answer came (ISO 8601); the load time until the first check ends. */
  checkedAt: string;
}

/** Options of {@linkcode PluginHealth}. */
export interface PluginHealthOptions {
  /** Time between checks (default 15 s). */
  intervalMs?: number;
  /** How long one plugin may take to answer (default 2 s); later is down. */
  timeoutMs?: number;
  clock?: Clock;
  log?: Logger;
}

/** `p`, or a rejection once `signal` aborts (a plugin may ignore the signal it is given). */
function bounded<T>(p: Promise<T>, signal: AbortSignal, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new Error(`health check: no answer within ${timeoutMs} ms`));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Periodic health checks of loaded plugins.
 *
 * @example
 * ```ts ignore
 * import { PluginHealth } from "./plugin_health.ts";
 * const health = new PluginHealth(plugins.all);
 * health.start();
 * health.up(); // { "ca/vault": 1 }
 * await health.dispose();
 * ```
 */
export class PluginHealth {
  readonly #plugins: readonly WatchedPlugin[];
  readonly #entries = new Map<string, PluginHealthEntry>();
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #stop = new AbortController();
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> | undefined;

  constructor(plugins: readonly WatchedPlugin[], options: PluginHealthOptions = {}) {
    this.#plugins = plugins;
    this.#intervalMs = options.intervalMs ?? 15_000;
    this.#timeoutMs = options.timeoutMs ?? 2_000;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log ?? logger("plugins");
    const loadedAt = new Date(this.#clock.now()).toISOString();
    for (const p of plugins) {
      this.#entries.set(`${p.kind}/${p.name}`, { up: true, checkedAt: loadedAt });
    }
  }

  /** Checks now, then every interval until {@linkcode dispose}. */
  start(): void {
    if (this.#timer !== undefined || this.#stop.signal.aborted) return;
    void this.check();
    this.#timer = setInterval(() => void this.check(), this.#intervalMs);
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  /** One round over every plugin; while a round runs, callers share it. Never rejects. */
  check(): Promise<void> {
    this.#running ??= Promise.all(this.#plugins.map((p) => this.#checkOne(p)))
      .then(() => {})
      .finally(() => this.#running = undefined);
    return this.#running;
  }

  async #checkOne(p: WatchedPlugin): Promise<void> {
    if (this.#stop.signal.aborted) return;
    let r: HealthResult;
    try {
      r = await this.#ask(p.instance);
    } catch (e) {
      r = { ok: false, message: errorMessage(e) };
    }
    // Disposal aborts the calls in flight: those answers are not the plugin's.
    if (!this.#stop.signal.aborted) this.#record(p, r);
  }

  async #ask(instance: PluginInstance): Promise<HealthResult> {
    if (!instance.health) return { ok: true };
    const signal = AbortSignal.any([AbortSignal.timeout(this.#timeoutMs), this.#stop.signal]);
    const answer = Promise.resolve().then(() => instance.health!(signal));
    return await bounded(answer, signal, this.#timeoutMs);
  }

  #record(p: WatchedPlugin, r: HealthResult): void {
    const id = `${p.kind}/${p.name}`;
    const before = this.#entries.get(id);
    const up = r.ok === true;
    const message = typeof r.message === "string" && r.message !== "" ? r.message : undefined;
    this.#entries.set(id, {
      up,
      ...(message !== undefined ? { message } : {}),
      checkedAt: new Date(this.#clock.now()).toISOString(),
    });
    if (before?.up && !up) {
      this.#log.warn("Plugin unhealthy", { kind: p.kind, name: p.name, message: message ?? "" });
    } else if (before && !before.up && up) {
      this.#log.info("Plugin healthy again", { kind: p.kind, name: p.name });
    }
  }

  /** `kind/name` → 1 up, 0 down (`camblet_plugin_up`). */
  up(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, e] of this.#entries) out[id] = e.up ? 1 : 0;
    return out;
  }

  /** `kind/name` → the last answer. */
  status(): Record<string, PluginHealthEntry> {
    const out: Record<string, PluginHealthEntry> = {};
    for (const [id, e] of this.#entries) out[id] = { ...e };
    return out;
  }

  /** Stops the checks and waits for the round in flight (its calls are aborted). */
  async dispose(): Promise<void> {
    clearInterval(this.#timer);
    this.#stop.abort(new Error("plugin health checks stopped"));
    await this.#running;
  }
}
