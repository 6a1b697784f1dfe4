/**
 * The runtime guard as the daemon runs it: started when the first policy with a `runtime:`
 * section arrives, updated on every accepted reload, shown in status and metrics, streamed on
 * `/v1/events`.
 *
 * When the kernel cannot enforce (no `bpf` in the active LSM list, load refused, canary not
 * denied): policies with `mode: enforce` runtime rules are refused — the agent does not start,
 * and a reload bringing them is rejected (the last good set stays) — never silently ignored.
 * Audit-only rules are reported as not running (error log, status), and the agent runs.
 *
 * Agent stop: by default the programs detach with the agent (links die with the process), and
 * confined workloads run unconfined from then on; the agent logs that. Opt-in fail-closed
 * (`agent.guard.failClosed`, bpffs directory `agent.guard.pinDir`, default
 * `/sys/fs/bpf/camblet-guard`; the environment variables `CAMBLET_GUARD_FAIL_CLOSED=1|0` and
 * `CAMBLET_GUARD_PIN_DIR` override them): the links are pinned, so the rules in force at exit
 * keep being enforced (also for new processes in keyed cgroups and children of confined
 * processes) until a new agent takes over — it attaches its own programs first, then removes the
 * old pins — or the directory is removed. Events are not read meanwhile; the kernel counts what
 * it cannot queue. A takeover starts with the new agent's own maps: processes it selects are
 * keyed again by its first sweep, but children that only inherited their rules from a confined
 * parent (task storage) run unconfined until their own labels select them.
 *
 * @module
 */
import type { removePinnedLink } from "../../driver/bpf/bpf_object.ts";
import type { TaskContext } from "../../driver/payloads.ts";
import { taskContextFromProc } from "../attestation/mod.ts";
import { logger } from "../log.ts";
import type { PolicySource } from "../policy/source.ts";
import type { EventFilter } from "./events.ts";
// Type-only: the guard's BPF objects load when a runtime rule first arrives, never before.
import type { GuardUnavailableError } from "./mod.ts";
import type { GuardStatus, RuntimeGuard } from "./runtime_guard.ts";

/** Options of {@linkcode DaemonGuard}. */
export interface DaemonGuardOptions {
  trustDomain: string;
  labelsOf(pid: number): Promise<string[]>;
  /** `agent.guard` of the config (default: fail-open). */
  config?: GuardConfig;
  /** Environment (default: the process's); see the module doc for the variables. */
  env?: Record<string, string | undefined>;
}

/** `agent.guard` (agent/config/schema.ts). */
export interface GuardConfig {
  failClosed: boolean;
  pinDir: string;
}

const DEFAULT_PIN_DIR = "/sys/fs/bpf/camblet-guard";

/**
 * The pin directory when fail-closed is on, else undefined: `config` with the environment's
 * `CAMBLET_GUARD_FAIL_CLOSED` (1/0, true/false) and `CAMBLET_GUARD_PIN_DIR` over it. Throws
 * naming the variable on a value it cannot read.
 *
 * @example
 * ```ts
 * import { failClosedPinDir } from "./daemon_guard.ts";
 * failClosedPinDir({ failClosed: false, pinDir: "/sys/fs/bpf/g" }, { CAMBLET_GUARD_FAIL_CLOSED: "1" });
 * // "/sys/fs/bpf/g"
 * ```
 */
export function failClosedPinDir(
  config: GuardConfig | undefined,
  env: Record<string, string | undefined>,
): string | undefined {
  let on = config?.failClosed ?? false;
  const flag = env["CAMBLET_GUARD_FAIL_CLOSED"];
  if (flag !== undefined && flag !== "") {
    if (/^(1|true)$/i.test(flag)) on = true;
    else if (/^(0|false)$/i.test(flag)) on = false;
    else {
      throw new Error(
        `Cannot read CAMBLET_GUARD_FAIL_CLOSED=${JSON.stringify(flag)} (environment): use 1 or 0`,
      );
    }
  }
  if (!on) return undefined;
  const dir = env["CAMBLET_GUARD_PIN_DIR"] || config?.pinDir || DEFAULT_PIN_DIR;
  if (!dir.startsWith("/")) {
    throw new Error(
      `Cannot pin the runtime guard in ${JSON.stringify(dir)} (CAMBLET_GUARD_PIN_DIR): ` +
        "it must be an absolute path",
    );
  }
  return dir;
}

/** `runtimeGuard` in `/v1/status`. */
export type DaemonGuardStatus =
  | { state: "off"; reason: string }
  | { state: "unavailable"; reason: string }
  | ({ state: "running" } & GuardStatus);

const log = logger("guard");

function enforcing(policies: readonly PolicySource[]): PolicySource[] {
  return policies.filter((p) => p.policy.runtime && p.policy.runtime.mode !== "audit");
}

/** The daemon's handle on the guard. */
export class DaemonGuard {
  readonly #o: DaemonGuardOptions;
  #guard: RuntimeGuard | undefined;
  #unavailable: string | undefined;
  #env: Record<string, string | undefined>;
  readonly #pinDir: string | undefined;

  /** Throws on fail-closed settings it cannot read (before anything is loaded). */
  constructor(o: DaemonGuardOptions) {
    this.#o = o;
    this.#env = o.env ?? Deno.env.toObject();
    this.#pinDir = failClosedPinDir(o.config, this.#env);
  }

  /**
   * Starts or updates the guard for `policies`. Throws {@linkcode GuardUnavailableError} when
   * enforce rules cannot be enforced here (the caller refuses the set).
   */
  async apply(policies: readonly PolicySource[]): Promise<void> {
    if (this.#guard) {
      await this.#guard.update(policies, false);
      return;
    }
    // Only a policy with a runtime: section loads the guard and its BPF objects (./mod.ts).
    if (!policies.some((p) => p.policy.runtime !== undefined)) return;
    const { GuardUnavailableError, openRuntimeGuard } = await import("./mod.ts");
    if (this.#unavailable) return this.#refuse(policies, this.#unavailable, GuardUnavailableError);
    try {
      const pinDir = this.#pinDir;
      const lsm = this.#env["CAMBLET_GUARD_LSM_LIST"];
      this.#guard = await openRuntimeGuard(policies, {
        trustDomain: this.#o.trustDomain,
        labelsOf: (pid) => this.#o.labelsOf(pid),
        // The agent serves the kernel meanwhile; cgroups and processes are keyed as attested.
        waitForSweep: false,
        ...(lsm ? { lsmListPath: lsm } : {}),
      });
      if (pinDir) {
        this.#takeOverPins(
          pinDir,
          (await import("../../driver/bpf/bpf_object.ts")).removePinnedLink,
        );
      }
      const s = this.#guard.status();
      log.info("Runtime guard running", {
        programs: s.programs.length,
        rulesets: s.rulesets.length,
        canary: s.canary,
        failClosed: pinDir ?? "no",
      });
    } catch (e) {
      if (!(e instanceof GuardUnavailableError)) throw e;
      this.#unavailable = e.message;
      return this.#refuse(policies, e.message, GuardUnavailableError);
    }
  }

  #refuse(
    policies: readonly PolicySource[],
    why: string,
    Unavailable: typeof GuardUnavailableError,
  ): void {
    const enforce = enforcing(policies);
    if (enforce.length) {
      const where = enforce.slice(0, 3).map((p) => `${p.file} item ${p.item}`).join(", ");
      throw new Unavailable(
        `${why}. Refusing ${enforce.length} polic${enforce.length === 1 ? "y" : "ies"} with ` +
          `enforce runtime rules (${where}); fix the kernel, or set runtime.mode: audit to run ` +
          "without them",
      );
    }
    log.error(`Runtime guard not running; audit-mode runtime rules are not reported: ${why}`);
  }

  #takeOverPins(dir: string, removePinned: typeof removePinnedLink): void {
    Deno.mkdirSync(dir, { recursive: true });
    let removed = 0;
    for (const e of Deno.readDirSync(dir)) {
      if (removePinned(`${dir}/${e.name}`)) removed++; // unpinning removes the file
      try {
        Deno.removeSync(`${dir}/${e.name}`, { recursive: true });
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    }
    this.#guard!.pin(dir);
    log.info("Runtime guard pinned (fail-closed)", { dir, replaced: removed });
  }

  /** For `/v1/status`. */
  status(): DaemonGuardStatus {
    if (this.#guard) return { state: "running", ...this.#guard.status() };
    if (this.#unavailable) return { state: "unavailable", reason: this.#unavailable };
    return { state: "off", reason: "no policy has a runtime: section" };
  }

  /** Prometheus text ("" when not running). */
  metricsText(): string {
    return this.#guard?.metricsText() ?? "";
  }

  /** The `/v1/events` stream; throws RangeError (HTTP 400) when the guard is not running. */
  events(filter: EventFilter): ReadableStream<Uint8Array> {
    if (!this.#guard) {
      const s = this.status();
      throw new RangeError(`The runtime guard is not running: ${"reason" in s ? s.reason : ""}`);
    }
    return this.#guard.subscribe(filter);
  }

  /** Stops (detaching unless fail-closed pinned). */
  close(): void {
    if (!this.#guard) return;
    const pinned = this.#guard.status().pinned;
    this.#guard.close(pinned !== undefined);
    this.#guard = undefined;
    if (pinned) log.warn("Runtime guard stopped; its pinned rules stay in force", { dir: pinned });
    else log.warn("Runtime guard stopped: workloads are no longer confined");
  }
}

/** `labelsOf` from the daemon's `augment` (the same attestation the kernel link uses). */
export function labelsVia(
  augment: (task: TaskContext, signal: AbortSignal) => Promise<string[]>,
): (pid: number) => Promise<string[]> {
  return (pid) => {
    const task = taskContextFromProc(pid);
    if (!task) return Promise.reject(new Error(`Cannot attest pid ${pid}: it is gone`));
    return augment(task, AbortSignal.timeout(2000));
  };
}
