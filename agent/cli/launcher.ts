/**
 * Stops the daemon when the wrapper that launched it dies. `npx -y deno@… task start` runs
 * `npm exec` → `sh -c deno task start` → `deno task` → the agent: npm passes SIGTERM to `sh`, which
 * dies without passing it on, so the agent would keep running, orphaned, with its socket and eBPF
 * programs. `deno task` itself forwards signals; the shell between it and npm does not.
 *
 * Only wrappers are watched (`deno task`, `sh -c`, `npm exec`/`npx`), never a login shell or a
 * service manager, so `camblet-agent &` from a shell that exits keeps running as before.
 *
 * @module
 */

/** One process of the launch chain, as /proc showed it at start. */
export interface Launcher {
  pid: number;
  ppid: number;
  /** Start time in clock ticks since boot (/proc/<pid>/stat field 22), against pid reuse. */
  start: string;
  /** Its command line, for the log. */
  command: string;
}

interface ProcInfo {
  ppid: number;
  start: string;
  argv: string[];
}

function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // comm may contain spaces and parentheses: the fields start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter(Boolean);
    return { ppid: Number(fields[1]), start: fields[19] ?? "", argv };
  } catch {
    return undefined;
  }
}

function base(path: string | undefined): string {
  return (path ?? "").split("/").pop() ?? "";
}

/** Whether `argv` is `deno task …` (any deno binary, flags before `task` allowed). */
export function isDenoTask(argv: readonly string[]): boolean {
  return base(argv[0]) === "deno" && argv.slice(1).find((a) => !a.startsWith("-")) === "task";
}

/** Whether `argv` is a wrapper that may sit between `deno task` and the user's command. */
export function isWrapper(argv: readonly string[]): boolean {
  const name = base(argv[0]);
  if (isDenoTask(argv)) return true;
  if (["sh", "bash", "dash"].includes(name) && argv[1] === "-c") return true;
  // npm sets its process title to "npm exec …"; npx is `node …/npx-cli.js`.
  if (/^npm (exec|x)\b/.test(argv.join(" ")) || name === "npx") return true;
  if (name === "node" && argv.slice(1).some((a) => /npx-cli\.js$|npm-cli\.js$/.test(a))) {
    return true;
  }
  return false;
}

/**
 * The wrapper processes above `pid` (nearest first) when its parent is `deno task`, else []: the
 * agent started directly, or by a supervisor, watches nothing.
 */
export function launchChain(pid: number = Deno.pid): Launcher[] {
  const self = readProc(pid);
  if (!self) return [];
  const chain: Launcher[] = [];
  let ppid = self.ppid;
  for (let depth = 0; depth < 8 && ppid > 1; depth++) {
    const p = readProc(ppid);
    if (!p || (depth === 0 ? !isDenoTask(p.argv) : !isWrapper(p.argv))) break;
    chain.push({ pid: ppid, ppid: p.ppid, start: p.start, command: p.argv.join(" ") });
    ppid = p.ppid;
  }
  return chain;
}

/** The first launcher that exited or was re-parented (its own launcher died), if any. */
export function deadLauncher(chain: readonly Launcher[]): Launcher | undefined {
  return chain.find((l) => {
    const now = readProc(l.pid);
    return !now || now.start !== l.start || now.ppid !== l.ppid;
  });
}

/** Options for {@linkcode watchLaunchers}. */
export interface WatchLaunchersOptions {
  /** How often /proc is read (default 1 s). */
  intervalMs?: number;
  /** Defaults to {@linkcode launchChain} of this process. */
  chain?: Launcher[];
}

/**
 * Calls `onDeath` once when a process of the launch chain dies; returns a function that stops
 * watching. Watches nothing when the chain is empty. The timer does not keep the process alive.
 *
 * @example
 * ```ts ignore
 * const unwatch = watchLaunchers((l) => daemon.stop(`launcher exited: ${l.command}`));
 * ```
 */
export function watchLaunchers(
  onDeath: (launcher: Launcher) => void,
  options: WatchLaunchersOptions = {},
): () => void {
  const chain = options.chain ?? launchChain();
  if (chain.length === 0) return () => {};
  const timer = setInterval(() => {
    const dead = deadLauncher(chain);
    if (dead === undefined) return;
    clearInterval(timer);
    onDeath(dead);
  }, options.intervalMs ?? 1000);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}
