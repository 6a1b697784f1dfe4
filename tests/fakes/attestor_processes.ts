/**
 * Real processes for attestor tests: other uids/gids (setpriv), a private mount + pid namespace
 * running a copied binary (unshare), cgroup v2 groups, and a pid deliberately reused
 * (`/proc/sys/kernel/ns_last_pid`). Needs root, util-linux and a cgroup2 mount.
 *
 * @module
 */

/** A process a test started; `stop()` kills it and reaps it. */
export interface TestProcess {
  /** Global pid of the workload (not of a wrapper). */
  pid: number;
  stop(): Promise<void>;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function exeOf(pid: number): Promise<string | undefined> {
  try {
    return await Deno.readLink(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}

function spawn(cmd: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "piped" }).spawn();
}

function stopper(child: Deno.ChildProcess, extra: () => Promise<void> = async () => {}) {
  return async () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.stderr.cancel().catch(() => {});
    await child.status;
    await extra();
  };
}

/** Options of {@linkcode spawnAs}. */
export interface SpawnAsOptions {
  uid: number;
  gid: number;
  groups?: number[];
  /** Effective uid differing from the real one (setpriv --euid). */
  euid?: number;
  egid?: number;
  /** Program (default `sleep`). */
  command?: string;
  args?: string[];
  env?: Record<string, string>;
}

/** Runs `sleep 300` (or `command`) as another uid/gid via `setpriv`, which execs in place. */
export async function spawnAs(o: SpawnAsOptions): Promise<TestProcess> {
  const args = [
    `--ruid=${o.uid}`,
    `--euid=${o.euid ?? o.uid}`,
    `--rgid=${o.gid}`,
    `--egid=${o.egid ?? o.gid}`,
    o.groups?.length ? `--groups=${o.groups.join(",")}` : "--clear-groups",
    "--",
    o.command ?? "sleep",
    ...(o.args ?? ["300"]),
  ];
  const child = new Deno.Command("setpriv", {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    ...(o.env ? { env: o.env, clearEnv: true } : {}),
  }).spawn();
  const target = o.command ?? "sleep";
  await waitFor(`setpriv to exec ${target}`, async () => {
    const exe = await exeOf(child.pid);
    return exe && !exe.endsWith("/setpriv") ? true : undefined;
  });
  return { pid: child.pid, stop: stopper(child) };
}

/**
 * Runs a copy of `/bin/sleep` with `marker` bytes appended (so its hash is its own) inside a new
 * mount and pid namespace, from a tmpfs that only that namespace sees, at `/mnt` + `path`. The
 * agent's namespace has a different file (or none) at that path. Returns the copy's bytes.
 */
export async function spawnInNamespaces(path: string, marker: string): Promise<
  TestProcess & { binary: Uint8Array }
> {
  const base = await Deno.readFile("/bin/sleep");
  const binary = new Uint8Array([...base, ...new TextEncoder().encode(marker)]);
  const staging = await Deno.makeTempFile({ prefix: "camblet-nsbin-" });
  await Deno.writeFile(staging, binary, { mode: 0o755 });
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  const script = [
    `mount -t tmpfs tmpfs /mnt`,
    `mkdir -p /mnt${dir}`,
    `cp ${staging} /mnt${path}`,
    `exec /mnt${path} 300`,
  ].join(" && ");
  const child = spawn("unshare", [
    "--mount",
    "--pid",
    "--fork",
    "--kill-child",
    "--",
    "sh",
    "-c",
    script,
  ]);
  const pid = await waitFor("the namespaced workload", async () => {
    let text = "";
    try {
      text = await Deno.readTextFile(`/proc/${child.pid}/task/${child.pid}/children`);
    } catch {
      return undefined;
    }
    for (const c of text.trim().split(/\s+/).filter(Boolean).map(Number)) {
      if ((await exeOf(c))?.endsWith(path)) return c;
    }
    return undefined;
  });
  return {
    pid,
    binary,
    stop: stopper(child, () => Deno.remove(staging).catch(() => {})),
  };
}

/** Where cgroup v2 is mounted: `/sys/fs/cgroup` (unified) or `/sys/fs/cgroup/unified` (hybrid). */
export async function cgroup2Root(): Promise<string> {
  const mounts = await Deno.readTextFile("/proc/self/mounts");
  for (const line of mounts.split("\n")) {
    const [, mountPoint, type] = line.split(" ");
    if (type === "cgroup2" && mountPoint) return mountPoint;
  }
  throw new Error("Cannot find a cgroup2 mount in /proc/self/mounts");
}

/** A cgroup v2 group the test made; `remove()` deletes it (after its processes are gone). */
export interface TestCgroup {
  /** Path as the kernel and /proc show it, e.g. `/camblet-test-1.slice/web.service`. */
  path: string;
  add(pid: number): Promise<void>;
  remove(): Promise<void>;
}

/** Creates nested cgroup v2 directories `relative` (e.g. `a.slice/b.service`). */
export async function createCgroup(relative: string): Promise<TestCgroup> {
  const root = await cgroup2Root();
  const rel = relative.replace(/^\/+/, "");
  await Deno.mkdir(`${root}/${rel}`, { recursive: true });
  return {
    path: `/${rel}`,
    add: (pid) => Deno.writeTextFile(`${root}/${rel}/cgroup.procs`, String(pid)),
    async remove() {
      const parts = rel.split("/");
      for (let i = parts.length; i > 0; i--) {
        await waitFor(`cgroup ${parts.slice(0, i).join("/")} to be removable`, async () => {
          try {
            await Deno.remove(`${root}/${parts.slice(0, i).join("/")}`);
            return true;
          } catch (e) {
            return e instanceof Deno.errors.NotFound ? true : undefined;
          }
        });
      }
    },
  };
}

/**
 * Starts `start(pid)` so that the new process gets exactly `pid` (reuse): sets the kernel's
 * last-pid counter to `pid - 1` just before forking. Retries when another process wins the race.
 */
export async function spawnWithPid(
  pid: number,
  start: () => Promise<TestProcess>,
): Promise<TestProcess> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // setpriv forks nothing: the workload's pid is the child's own, so aim at pid - 1.
    await Deno.writeTextFile("/proc/sys/kernel/ns_last_pid", String(pid - 1));
    const p = await start();
    if (p.pid === pid) return p;
    await p.stop();
  }
  throw new Error(`Cannot get pid ${pid} reused after 50 attempts`);
}
