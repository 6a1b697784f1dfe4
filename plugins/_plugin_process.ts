/**
 * One external plugin process: checksum check, spawn in its own process group, JSON-RPC over stdio
 * with per-call timeouts and a maximum message size, restart with exponential backoff when it dies
 * (or hangs, or oversteps), orderly shutdown that never waits longer than a bound.
 *
 * @module
 */
import type { Logger } from "@logtape/logtape";
import type { PluginKind } from "./types.ts";
import { LineWriter } from "./sdk/_lines.ts";
import {
  type ConfigureResult,
  ERROR,
  type HandshakeResult,
  METHOD,
  PROTOCOL,
  PROTOCOL_VERSION,
} from "./sdk/protocol.ts";
import { ChecksumMismatchError, verifyExecutable } from "./_sha256.ts";
import { within } from "./_pacing.ts";
import { logStderr, readRpcAnswers } from "./_plugin_output.ts";

/** How to run a plugin. */
export interface ProcessSpec {
  kind: PluginKind;
  name: string;
  /** Path of the executable (checksummed) and its arguments. */
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  /** Expected hex SHA-256 of `command`; absent = unchecked (warned). */
  sha256?: string;
  config: unknown;
  trustDomain: string;
  agentVersion: string;
  callTimeoutMs: number;
  startTimeoutMs: number;
  restartInitialMs: number;
  restartMaxMs: number;
  /** After this many calls in a row time out, the plugin is killed and restarted. */
  maxConsecutiveTimeouts: number;
  /** Longest stdout line (one JSON-RPC message); a plugin past it is killed and restarted. */
  maxMessageBytes: number;
}

/** Each wait of {@linkcode PluginProcess.dispose} (shutdown answer, exit, streams) is bounded by this. */
const STOP_STEP_MS = 1000;

/** A JSON-RPC error answered by the plugin. */
export class PluginCallError extends Error {
  override name = "PluginCallError";
  constructor(readonly code: number, message: string, readonly data?: unknown) {
    super(message);
  }
}

/** A `badConfig` answer lists the plugin's problems; put them in the message. */
function configureError(e: unknown): unknown {
  if (!(e instanceof PluginCallError) || e.code !== ERROR.badConfig) return e;
  const problems = (e.data as { problems?: { field?: string; message?: string }[] })?.problems;
  if (!Array.isArray(problems) || problems.length === 0) return e;
  const list = problems.map((p) => `config.${p.field ?? ""}: ${p.message ?? ""}`).join("; ");
  return new PluginCallError(e.code, `${e.message}: ${list}`, e.data);
}

type State = "starting" | "ready" | "restarting" | "failed" | "stopped";

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

interface Running {
  child: Deno.ChildProcess;
  writer: LineWriter;
  /** Both output streams read to the end (or cancelled) and the process exited. */
  done: Promise<void>;
  startedAt: number;
  /** Cancels the stdout and stderr readers (a child outside the group may hold the pipes). */
  stopReading: AbortController;
  /** Why the agent killed it, for the exit reason. */
  killedFor?: string;
  /** It exited and its group was killed: its pid may be reused now, never signal it again. */
  reaped?: boolean;
}

/** A supervised plugin process. Start it with {@linkcode PluginProcess.start}. */
export class PluginProcess {
  #spec: ProcessSpec;
  #log: Logger;
  #state: State = "starting";
  #run: Running | undefined;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #timeouts = 0;
  #attempt = 0;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #lastExit = "";
  #disposed = false;
  /** Set by the handshake and configure of the latest launch. */
  handshake: HandshakeResult | undefined;
  configured: ConfigureResult = {};

  private constructor(spec: ProcessSpec, log: Logger) {
    this.#spec = spec;
    this.#log = log;
  }

  /** Checks, spawns, handshakes and configures; throws (having cleaned up) when any step fails. */
  static async start(spec: ProcessSpec, log: Logger): Promise<PluginProcess> {
    const p = new PluginProcess(spec, log);
    await p.#launch();
    return p;
  }

  /** `starting`, `ready`, `restarting`, `failed` or `stopped`. */
  get state(): State {
    return this.#state;
  }

  async #launch(): Promise<void> {
    this.#state = "starting";
    await verifyExecutable(this.#spec.command, this.#spec.sha256, this.#log);
    // dispose() ran during the check: start nothing it would not see.
    if (this.#disposed) throw new Error("Cannot start plugin: it is being stopped");
    const s = this.#spec;
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(s.command, {
        args: s.args,
        env: s.env,
        ...(s.cwd ? { cwd: s.cwd } : {}),
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
        // Its own process group (and session), so that killing it takes its children too.
        detached: true,
      }).spawn();
    } catch (e) {
      throw new Error(`Cannot start plugin "${s.command}": ${(e as Error).message}`);
    }
    const run: Running = {
      child,
      writer: new LineWriter(child.stdin),
      startedAt: Date.now(),
      done: Promise.resolve(),
      stopReading: new AbortController(),
    };
    const reading = this.#readStdout(run);
    const logging = this.#readStderr(run);
    run.done = Promise.all([reading, logging, child.status]).then(() => {});
    this.#run = run;
    void child.status.then((status) => this.#onExit(run, status));
    try {
      const hs = await this.#request(METHOD.handshake, {
        protocol: PROTOCOL,
        versions: [PROTOCOL_VERSION],
        kind: s.kind,
        name: s.name,
        agentVersion: s.agentVersion,
      }, s.startTimeoutMs) as HandshakeResult;
      if (hs?.protocol !== PROTOCOL || hs.version !== PROTOCOL_VERSION) {
        throw new Error(
          `Cannot use plugin: it answered protocol ${hs?.protocol} version ${hs?.version}, the agent speaks ${PROTOCOL} ${PROTOCOL_VERSION}`,
        );
      }
      if (hs.kind !== s.kind) {
        throw new Error(
          `Cannot use plugin as a ${s.kind} plugin: it says it is a ${hs.kind} plugin`,
        );
      }
      this.handshake = hs;
      this.configured = (await this.#request(METHOD.configure, {
        config: s.config,
        trustDomain: s.trustDomain,
      }, s.startTimeoutMs).catch((e) => {
        throw configureError(e);
      }) as ConfigureResult) ?? {};
      // dispose() ran while this launch was under way: do not leave a ready plugin behind.
      if (this.#disposed) throw new Error("Cannot start plugin: it is being stopped");
      this.#state = "ready";
      this.#timeouts = 0;
    } catch (e) {
      await this.#stop(run);
      throw e;
    }
  }

  #readStdout(run: Running): Promise<void> {
    return readRpcAnswers({
      stream: run.child.stdout,
      maxMessageBytes: this.#spec.maxMessageBytes,
      signal: run.stopReading.signal,
      log: this.#log,
      kill: (reason) => this.#kill(run, reason),
      onAnswer: (msg) => {
        const pending = typeof msg.id === "number" ? this.#pending.get(msg.id) : undefined;
        if (!pending) return;
        this.#pending.delete(msg.id as number);
        clearTimeout(pending.timer);
        if (msg.error) {
          pending.reject(new PluginCallError(msg.error.code, msg.error.message, msg.error.data));
        } else pending.resolve(msg.result);
      },
    });
  }

  #readStderr(run: Running): Promise<void> {
    return logStderr(run.child.stderr, run.stopReading.signal, this.#log);
  }

  /** SIGKILLs the plugin's process group (the plugin and its children), else the plugin. */
  #kill(run: Running, reason?: string): void {
    if (run.reaped) return;
    if (reason !== undefined) run.killedFor ??= reason;
    try {
      Deno.kill(-run.child.pid, "SIGKILL");
    } catch {
      try {
        run.child.kill("SIGKILL");
      } catch { /* already gone */ }
    }
  }

  #request(
    method: string,
    params: unknown,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<unknown> {
    const run = this.#run;
    if (!run) return Promise.reject(new Error(`Cannot call ${method}: plugin is not running`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        this.#pending.delete(id);
        clearTimeout(entry.timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        cleanup();
        reject(
          signal!.reason instanceof Error
            ? signal!.reason
            : new Error(`Cannot call ${method}: aborted`),
        );
      };
      const entry: Pending = {
        resolve: (v) => {
          cleanup();
          this.#timeouts = 0;
          resolve(v);
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
        timer: setTimeout(() => {
          cleanup();
          reject(new Error(`Cannot call ${method}: no answer within ${timeoutMs} ms`));
          this.#onTimeout(run);
        }, timeoutMs),
      };
      this.#pending.set(id, entry);
      signal?.addEventListener("abort", onAbort, { once: true });
      run.writer.send({ jsonrpc: "2.0", id, method, params }).catch((e) => {
        entry.reject(new Error(`Cannot call ${method}: ${(e as Error).message}`));
      });
    });
  }

  /** Calls a method of the running plugin. Fails fast while it is restarting. */
  call(
    method: string,
    params: unknown,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ) {
    if (this.#state !== "ready") {
      return Promise.reject(
        new Error(
          `Cannot call ${method}: plugin is ${this.#state}${
            this.#lastExit ? ` (${this.#lastExit})` : ""
          }`,
        ),
      );
    }
    return this.#request(
      method,
      params,
      options.timeoutMs ?? this.#spec.callTimeoutMs,
      options.signal,
    );
  }

  #onTimeout(run: Running): void {
    if (++this.#timeouts < this.#spec.maxConsecutiveTimeouts || this.#run !== run) return;
    this.#log.error("Plugin does not answer; killing it", { timeouts: this.#timeouts });
    this.#timeouts = 0;
    this.#kill(run, `did not answer ${this.#spec.maxConsecutiveTimeouts} calls in a row`);
  }

  #onExit(run: Running, status: Deno.CommandStatus): void {
    // Children it left behind go with it; they may hold its pipes open.
    this.#kill(run);
    run.reaped = true;
    if (this.#run !== run) return;
    const how = status.signal ? `killed by ${status.signal}` : `exited with code ${status.code}`;
    // Killed for a reason, it may still exit first on its own (EPIPE once its pipe is cut): the
    // reason is what happened, whichever way the process ended.
    this.#lastExit = run.killedFor ? `killed: ${run.killedFor} (${how})` : how;
    for (const p of [...this.#pending.values()]) p.reject(new Error(`Plugin ${this.#lastExit}`));
    if (this.#state === "stopped" || this.#state === "starting") return;
    this.#log.error("Plugin died; restarting it", { reason: this.#lastExit });
    if (Date.now() - run.startedAt > 30_000) this.#attempt = 0;
    void this.#closeStreams(run);
    this.#scheduleRestart();
  }

  #scheduleRestart(): void {
    this.#state = "restarting";
    const s = this.#spec;
    const delay = Math.min(s.restartInitialMs * 2 ** this.#attempt, s.restartMaxMs);
    this.#attempt++;
    this.#restartTimer = setTimeout(async () => {
      try {
        await this.#launch();
        this.#log.info("Plugin restarted", { attempt: this.#attempt });
      } catch (e) {
        if (this.#state === "stopped") return;
        if (e instanceof ChecksumMismatchError) {
          this.#state = "failed";
          this.#lastExit = e.message;
          this.#log.error("Plugin not restarted: {error}", { error: e.message });
          return;
        }
        this.#log.error("Plugin restart failed; retrying", { error: e, delayMs: delay * 2 });
        this.#scheduleRestart();
      }
    }, delay);
  }

  /** Closes stdin and waits for the streams, each for a bounded time, then stops reading. */
  async #closeStreams(run: Running): Promise<void> {
    if (!await within(run.writer.close(), STOP_STEP_MS)) await run.writer.abort();
    if (!await within(run.done, STOP_STEP_MS)) run.stopReading.abort();
    await within(run.done, STOP_STEP_MS);
  }

  async #stop(run: Running): Promise<void> {
    this.#kill(run);
    await this.#closeStreams(run);
  }

  /**
   * Asks the plugin to shut down, then kills its process group if it has not exited within a
   * second. Returns within about five seconds whatever the plugin does.
   */
  async dispose(): Promise<void> {
    const wasReady = this.#state === "ready";
    this.#state = "stopped";
    this.#disposed = true;
    clearTimeout(this.#restartTimer);
    const run = this.#run;
    if (!run) return;
    if (wasReady) {
      await this.#request(METHOD.shutdown, {}, STOP_STEP_MS).catch(() => {});
    }
    if (!await within(run.writer.close(), STOP_STEP_MS)) await run.writer.abort();
    if (!await within(run.child.status, STOP_STEP_MS)) this.#kill(run);
    // The group goes in any case: children of a plugin that exited must not outlive the agent.
    this.#kill(run);
    await this.#closeStreams(run);
    for (const p of [...this.#pending.values()]) p.reject(new Error("Plugin stopped"));
  }
}
