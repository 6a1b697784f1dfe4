/**
 * Runs commands inside a Debian root (tests/packaging/debian_root.ts) the way a host would: its own
 * PID and mount namespaces with /proc mounted, `chroot`, and a clean environment whose PATH is the
 * root's (no Deno, npm or source tree of the host is visible).
 *
 * @module
 */

/** The PATH inside the root. */
export const ROOT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

/** Output of one command in the root. */
export interface RootResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@linkcode inRoot}. */
export interface InRootOptions {
  /** Extra environment inside the root. */
  env?: Record<string, string>;
  /** Also a network namespace (loopback up) and the host's /sys (for the eBPF data plane). */
  netns?: boolean;
  /** Kill after this long (default 120 s). */
  timeoutMs?: number;
}

function command(root: string, args: string[], options: InRootOptions): Deno.Command {
  const env = Object.entries({ PATH: ROOT_PATH, HOME: "/root", LC_ALL: "C", ...options.env })
    .map(([k, v]) => `${k}=${v}`);
  const chroot = ["chroot", root, "/usr/bin/env", "-i", ...env, ...args];
  const q = (a: string) => `'${a.replaceAll("'", `'\\''`)}'`;
  const inner = options.netns
    ? [
      "sh",
      "-c",
      `mount --rbind /sys ${q(root + "/sys")} && ip link set lo up && exec ${
        chroot.map(q).join(" ")
      }`,
    ]
    : chroot;
  // --kill-child: when unshare (the process we hold) dies, the command inside gets SIGTERM.
  const ns = ["--fork", "--kill-child=SIGTERM", "--pid", "--mount", `--mount-proc=${root}/proc`];
  if (options.netns) ns.push("--net");
  return new Deno.Command("unshare", {
    args: [...ns, ...inner],
    clearEnv: true,
    env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs `args` in `root` and returns its exit code and output. */
export async function inRoot(
  root: string,
  args: string[],
  options: InRootOptions = {},
): Promise<RootResult> {
  const child = command(root, args, options).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Starts `args` in `root` without waiting (the caller kills it and awaits `output()`). */
export function spawnInRoot(
  root: string,
  args: string[],
  options: InRootOptions = {},
): Deno.ChildProcess {
  return command(root, args, options).spawn();
}

/** Every path below `root` on its file system, relative, sorted (for before/after comparisons). */
export async function listTree(root: string, skip: RegExp): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, rel: string) => {
    for await (const e of Deno.readDir(dir)) {
      const r = `${rel}/${e.name}`;
      if (skip.test(r)) continue;
      out.push(r);
      if (e.isDirectory) await walk(`${dir}/${e.name}`, r);
    }
  };
  await walk(root, "");
  return out.sort();
}
