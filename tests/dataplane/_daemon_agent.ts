/**
 * The real agent daemon (`main.ts`, or the bundle when `CAMBLET_AGENT_JS` is set) with the proxy
 * data plane, run inside one of a test's network namespaces. Each agent has its own directory:
 * `config.yaml`, `policies/`, `services/` and `run/agent.sock`; the CA file is passed in so that
 * two agents can share one trust domain.
 *
 * @module
 */
import { agentEntry, REPO_ROOT, runCli } from "../cli/_run.ts";
import { ControlClient } from "../../agent/control/client.ts";
import type { AgentStatus } from "../../agent/daemon/status.ts";
import type { NetnsPair, NsProcess } from "./_netns.ts";

/** Options of {@linkcode DaemonAgent.start}. */
export interface DaemonAgentOptions {
  /** Namespace to run in. */
  ns: string;
  /** The agent's own directory (created). */
  dir: string;
  caPemPath: string;
  trustDomain: string;
  /** File name → YAML, written to `policies/`. */
  policies: Record<string, string>;
  /** File name → YAML, written to `services/`. */
  services: Record<string, string>;
  /** `agent.proxy` keys of the config file. */
  proxy?: Record<string, unknown>;
  /** Extra arguments after `run`. */
  args?: string[];
  /** `-v`: 1 (debug, the default here) logs every connection; 0 is what users run. */
  verbosity?: number;
}

/** Makes a root CA with `camblet-agent ca create-root`, as a user would, and saves it at `path`. */
export async function createRootCa(path: string, name: string): Promise<void> {
  const root = await runCli(["ca", "create-root", name]);
  if (root.code !== 0) throw new Error(`ca create-root failed (${root.code}): ${root.stderr}`);
  await Deno.writeTextFile(path, root.stdout);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A daemon in a namespace. Start with {@linkcode DaemonAgent.start}; the pair's cleanup kills it. */
export class DaemonAgent {
  readonly pair: NetnsPair;
  readonly socket: string;
  #options: DaemonAgentOptions;
  /** Every process of this agent, the current one last. */
  #procs: NsProcess[] = [];

  private constructor(pair: NetnsPair, options: DaemonAgentOptions) {
    this.pair = pair;
    this.#options = options;
    this.socket = `${options.dir}/run/agent.sock`;
  }

  /** Writes the agent's files, starts it and waits for "Agent ready". */
  static async start(pair: NetnsPair, options: DaemonAgentOptions): Promise<DaemonAgent> {
    const a = new DaemonAgent(pair, options);
    const { dir } = options;
    await Deno.mkdir(`${dir}/policies`, { recursive: true });
    await Deno.mkdir(`${dir}/services`, { recursive: true });
    for (const [f, y] of Object.entries(options.policies)) await a.writePolicy(f, y);
    for (const [f, y] of Object.entries(options.services)) {
      await Deno.writeTextFile(`${dir}/services/${f}`, y);
    }
    await a.#writeConfig();
    await a.#spawn();
    return a;
  }

  /** The options in force (the last {@linkcode restart} may have changed some). */
  get options(): Readonly<DaemonAgentOptions> {
    return this.#options;
  }

  async #writeConfig(): Promise<void> {
    // JSON is YAML.
    await Deno.writeTextFile(
      `${this.#options.dir}/config.yaml`,
      JSON.stringify({ agent: { proxy: this.#options.proxy ?? {} } }),
    );
  }

  /** The process serving now (or the last one). */
  get process(): NsProcess {
    return this.#procs.at(-1)!;
  }

  /** Everything every process of this agent logged (the daemon logs to stderr only). */
  get log(): string {
    return this.#procs.map((p) => p.stderr).join("");
  }

  /** Where the current process' log starts in {@linkcode log}. */
  #logStart(): number {
    return this.#procs.slice(0, -1).reduce((n, p) => n + p.stderr.length, 0);
  }

  async #spawn(): Promise<void> {
    const o = this.#options;
    const cmd = [
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      `--config=${REPO_ROOT}deno.json`,
      // Profiling the agent under load: CAMBLET_AGENT_CPU_PROF=<dir> writes a .cpuprofile on exit.
      ...(Deno.env.get("CAMBLET_AGENT_CPU_PROF")
        ? ["--cpu-prof", `--cpu-prof-dir=${Deno.env.get("CAMBLET_AGENT_CPU_PROF")}`]
        : []),
      agentEntry(),
      "--config",
      `${o.dir}/config.yaml`,
      "-v",
      String(o.verbosity ?? 1),
      "run",
      "--driver",
      "proxy",
      "--trust-domain",
      o.trustDomain,
      "--ca-pem-path",
      o.caPemPath,
      "--policies-path",
      `${o.dir}/policies`,
      "--services-path",
      `${o.dir}/services`,
      "--control-socket",
      this.socket,
      ...(o.args ?? []),
    ]; // deno-fmt-ignore
    // Only our flags and config file configure it: no AGENT_* from the environment.
    const env: Record<string, string> = { NO_COLOR: "1" };
    for (const [k, v] of Object.entries(Deno.env.toObject())) {
      if (!k.startsWith("AGENT_") && k !== "CONFIG" && k !== "VERBOSITY") env[k] = v;
    }
    this.#procs.push(this.pair.spawn(o.ns, cmd, { env, clearEnv: true }));
    await this.waitForLog(/"Agent ready"/, 60_000);
  }

  /**
   * Waits until a log line after character `from` (default: the current process' start) matches
   * `re`; returns the line. Rejects on timeout or when the process exits first.
   */
  async waitForLog(re: RegExp, timeoutMs = 15_000, from?: number): Promise<string> {
    const start = from ?? this.#logStart();
    const end = Date.now() + timeoutMs;
    let exited = false;
    this.process.child.status.then(() => exited = true);
    for (;;) {
      const line = this.log.slice(start).split("\n").find((l) => re.test(l));
      if (line !== undefined) return line;
      if (exited || Date.now() > end) {
        throw new Error(
          `${
            exited ? "The agent exited" : `Timed out after ${timeoutMs} ms`
          } before logging ${re}` +
            `:\n${this.log.slice(start)}`,
        );
      }
      await sleep(25);
    }
  }

  /** Writes a policy file atomically (a rename), so the file watch never sees half a file. */
  async writePolicy(file: string, yaml: string): Promise<void> {
    const tmp = `${this.#options.dir}/.${file}.tmp`;
    await Deno.writeTextFile(tmp, yaml);
    await Deno.rename(tmp, `${this.#options.dir}/policies/${file}`);
  }

  /** `/v1/status` over the control socket. */
  async status(): Promise<AgentStatus> {
    const c = new ControlClient(this.socket);
    try {
      return await c.json<AgentStatus>("/v1/status");
    } finally {
      c.close();
    }
  }

  /** The Prometheus text of `/metrics` over the control socket. */
  async metrics(): Promise<string> {
    const c = new ControlClient(this.socket);
    try {
      const r = await c.get("/metrics");
      return await r.text();
    } finally {
      c.close();
    }
  }

  /**
   * The pid of the agent itself (the status' `pid`), checked to be the process started here:
   * `nsenter --net` execs the agent rather than staying as its parent.
   */
  async pid(): Promise<number> {
    const { pid } = await this.status();
    const comm = (await Deno.readTextFile(`/proc/${pid}/comm`)).trim();
    if (pid !== this.process.child.pid || comm !== "deno") {
      throw new Error(
        `The agent reports pid ${pid} (${comm}), but the process started is ${this.process.child.pid}`,
      );
    }
    return pid;
  }

  /** Polls the status until every one of `ports` is protected (the listener scan found it). */
  async waitForProtectedPorts(ports: number[], timeoutMs = 15_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const have = (await this.status()).proxy?.protectedPorts ?? [];
      if (ports.every((p) => have.includes(p))) return;
      if (Date.now() > end) {
        throw new Error(
          `Ports ${ports.join(",")} not protected after ${timeoutMs} ms (have ${have.join(",")})` +
            `:\n${this.log.slice(-3000)}`,
        );
      }
      await sleep(100);
    }
  }

  /** `proxy.connections["direction/outcome"]` of the status (0 when absent). */
  async connections(key: string): Promise<number> {
    return (await this.status()).proxy?.connections[key] ?? 0;
  }

  /**
   * Polls the status until `key` reaches at least `want` (the counter is bumped when a
   * connection is set up, which may trail the client's exit by a little); returns the value.
   */
  async waitForCount(key: string, want: number, timeoutMs = 10_000): Promise<number> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const n = await this.connections(key);
      if (n >= want || Date.now() > end) return n;
      await sleep(50);
    }
  }

  /** Sends `signal`; the exit status once it ended (SIGKILL after `graceMs`). */
  async stop(signal: Deno.Signal = "SIGTERM", graceMs = 10_000): Promise<Deno.CommandStatus> {
    return await this.process.stop(signal, graceMs);
  }

  /** Sends `signal` to the running agent (SIGHUP: reload). */
  kill(signal: Deno.Signal): void {
    this.process.child.kill(signal);
  }

  /**
   * Starts the agent again (after {@linkcode stop}) with the same files, or with `agent.proxy`
   * keys and extra arguments replaced.
   */
  async restart(change: Pick<DaemonAgentOptions, "proxy" | "args"> = {}): Promise<void> {
    this.#options = { ...this.#options, ...change };
    await this.#writeConfig();
    await this.#spawn();
  }
}
