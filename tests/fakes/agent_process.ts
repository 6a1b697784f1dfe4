/**
 * Runs the real agent (`main.ts`, or the bundle when `CAMBLET_AGENT_JS` is set) as a subprocess on
 * a kernel emulator's pty, with its own temp directory for the control socket, CA and policies.
 *
 * @module
 */
import { agentEntry, REPO_ROOT } from "../cli/_run.ts";
import type { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";

/** A running agent. */
export interface AgentProcess {
  child: Deno.ChildProcess;
  dir: string;
  /** Control socket path. */
  socket: string;
  /** Everything the agent logged so far. */
  log(): string;
  /** Waits for a log line matching `re` (counting from the start); returns it. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Sends `signal` and waits for the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
  /** Sends `signal` to the agent. */
  kill(signal: Deno.Signal): void;
  /** Exit status once it ended. */
  status: Promise<Deno.CommandStatus>;
}

/** Options of {@linkcode startAgent}. */
export interface StartAgentOptions {
  /** Extra CLI arguments. */
  args?: string[];
  /** Copy these example policy/service directories (under policies/examples/). */
  example?: string;
  trustDomain?: string;
  env?: Record<string, string>;
  /** A command line to run the agent under (e.g. strace and its flags, ending in `--`). */
  wrap?: string[];
  /** Another checkout to run the agent from (before/after benchmarks); default this one. */
  root?: string;
  /** Runs on the agent's directory before it starts (e.g. writes more policies). */
  prepare?: (dir: string) => Promise<void>;
  /** Extra `deno run` flags (e.g. `--cpu-prof`, `--v8-flags=…`). */
  denoArgs?: string[];
}

/** Copies a directory tree. */
export async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyDir(`${from}/${e.name}`, `${to}/${e.name}`);
    else await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

/** Starts the agent on `emu` and waits until it logs "Agent ready" (or exits). */
export async function startAgent(
  emu: KernelEmulator,
  o: StartAgentOptions = {},
): Promise<AgentProcess> {
  const dir = await Deno.makeTempDir({ prefix: "camblet-agent-test-" });
  const example = o.example ?? "quickstart";
  await copyDir(`${REPO_ROOT}policies/examples/${example}/policies`, `${dir}/policies`);
  await copyDir(`${REPO_ROOT}policies/examples/${example}/services`, `${dir}/services`).catch(() =>
    Deno.mkdir(`${dir}/services`)
  );
  await o.prepare?.(dir);
  const socket = `${dir}/run/agent.sock`;
  const root = o.root === undefined ? REPO_ROOT : o.root.replace(/\/?$/, "/");
  const args = [
    "run",
    "--quiet",
    `--config=${root}deno.json`,
    "-A",
    ...(o.denoArgs ?? []),
    o.root === undefined ? agentEntry() : `${root}main.ts`,
    "run",
    "--kernel-module-device",
    emu.path,
    "--control-socket",
    socket,
    "--policies-path",
    `${dir}/policies`,
    "--services-path",
    `${dir}/services`,
    "--ca-pem-path",
    `${dir}/ca.pem`,
    "--trust-domain",
    o.trustDomain ?? "acme.test",
    ...(o.args ?? []),
  ];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (!k.startsWith("AGENT_") && k !== "CONFIG" && k !== "VERBOSITY") env[k] = v;
  }
  Object.assign(env, { NO_COLOR: "1" }, o.env ?? {});
  const wrap = o.wrap ?? [];
  const child = new Deno.Command(wrap[0] ?? Deno.execPath(), {
    // The agent's cwd holds no config.yaml, so only flags configure it.
    args: wrap.length > 0 ? [...wrap.slice(1), Deno.execPath(), ...args] : args,
    cwd: dir,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const waiters = new Set<() => void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      text += dec.decode(chunk, { stream: true });
      for (const w of [...waiters]) w();
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = pumps.then(() => child.status);
  let exited = false;
  status.then(() => {
    exited = true;
    for (const w of [...waiters]) w();
  });
  const waitForLog = (re: RegExp, timeoutMs = 30_000) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const m = text.split("\n").find((l) => re.test(l));
        if (m !== undefined || exited) {
          waiters.delete(check);
          clearTimeout(timer);
          if (m !== undefined) resolve(m);
          else reject(new Error(`agent exited before logging ${re}:\n${text}`));
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no log line ${re} within ${timeoutMs} ms:\n${text}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  // Under a wrapper (strace), signals go to the agent itself, the wrapper's child.
  const target = () => {
    if (wrap.length === 0) return child.pid;
    try {
      const kids = Deno.readTextFileSync(`/proc/${child.pid}/task/${child.pid}/children`).trim();
      return Number(kids.split(/\s+/)[0]) || child.pid;
    } catch {
      return child.pid;
    }
  };
  const agent: AgentProcess = {
    child,
    dir,
    socket,
    log: () => text,
    waitForLog,
    kill: (signal) => Deno.kill(target(), signal),
    status,
    stop: async (signal: Deno.Signal = "SIGTERM") => {
      if (!exited) {
        try {
          Deno.kill(target(), signal);
        } catch { /* gone */ }
      }
      const s = await status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      return s.code;
    },
  };
  try {
    await waitForLog(/Agent ready/);
    // The pushes were written before that line; our reader may not have delivered them yet.
    await emu.waitFor(() => emu.messages("load_policies").length > 0, "the startup pushes");
  } catch (e) {
    await agent.stop("SIGKILL");
    throw e;
  }
  return agent;
}
