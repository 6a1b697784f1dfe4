/**
 * A fresh Debian root file system for installing the packages into: `debootstrap` from Debian's
 * packages, cached as a tarball keyed by suite, architecture, package set and month, so CI pays for
 * the download once a month and unpacks (a few seconds) every run.
 *
 * @module
 */

import { join } from "node:path";
import { homedir } from "node:os";

/** What the root holds; part of the cache key. */
export const DEBIAN_ROOT = {
  suite: "bookworm",
  variant: "minbase",
  mirror: "http://deb.debian.org/debian",
  // libbpf1, procps: the package's dependencies; systemd: the unit is enabled (postinst) and verified
  // (systemd-analyze verify --root) against the root it is installed into; git: a git policy source
  // under the unit's sandbox (systemd_test.ts).
  include: ["libbpf1", "procps", "systemd", "git"],
} as const;

function cacheDir(): string {
  const home = Deno.env.get("HOME") ?? homedir();
  return Deno.env.get("CAMBLET_ROOTFS_DIR") ?? join(home, ".cache", "camblet-agent", "rootfs");
}

function debArch(): string {
  return Deno.build.arch === "aarch64" ? "arm64" : "amd64";
}

/** The cached tarball's path for this month (it may not exist yet). */
export function rootTarball(now = new Date()): string {
  const month = now.toISOString().slice(0, 7);
  const r = DEBIAN_ROOT;
  const name = `debian-${r.suite}-${debArch()}-${r.variant}-${r.include.join("+")}-${month}.tar`;
  return join(cacheDir(), name);
}

async function run(cmd: string, args: string[], what: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    const tail = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-20).join("\n");
    const stdout = new TextDecoder().decode(out.stdout).trim().split("\n").slice(-10).join("\n");
    throw new Error(
      `${what}: ${cmd} ${args.join(" ")} exited with ${out.code}:\n${stdout}\n${tail}`,
    );
  }
}

/** Returns the cached root tarball, running debootstrap first when this month's is missing. */
export async function ensureRootTarball(log: (l: string) => void = console.error): Promise<string> {
  const tarball = rootTarball();
  try {
    await Deno.stat(tarball);
    return tarball;
  } catch { /* build it */ }
  await Deno.mkdir(cacheDir(), { recursive: true });
  const work = await Deno.makeTempDir({ dir: cacheDir(), prefix: ".debootstrap-" });
  const root = join(work, "root");
  const r = DEBIAN_ROOT;
  const started = Date.now();
  log(`packaging: debootstrap ${r.suite} (${r.variant}, +${r.include.join(",")}) into ${root}`);
  try {
    await run("debootstrap", [
      `--variant=${r.variant}`,
      `--include=${r.include.join(",")}`,
      `--arch=${debArch()}`,
      r.suite,
      root,
      r.mirror,
    ], "Cannot make a Debian root file system");
    // Apt lists and the package cache are not needed to dpkg -i into the root.
    await run("sh", [
      "-c",
      `rm -rf "${root}"/var/cache/apt/archives/*.deb "${root}"/var/lib/apt/lists/*`,
    ], "clean root");
    await run("tar", ["-C", root, "-cf", `${tarball}.tmp`, "."], "Cannot pack the Debian root");
    await Deno.rename(`${tarball}.tmp`, tarball);
    log(
      `packaging: Debian root cached as ${tarball} (${
        Math.round((Date.now() - started) / 1000)
      } s)`,
    );
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  return tarball;
}

/** Unpacks a fresh copy of the root into a new temporary directory and returns its path. */
export async function freshRoot(): Promise<string> {
  const tarball = await ensureRootTarball();
  const dir = await Deno.makeTempDir({ prefix: "camblet-debian-root-" });
  await run("tar", ["-C", dir, "-xf", tarball], `Cannot unpack ${tarball}`);
  return dir;
}

if (import.meta.main) console.log(await ensureRootTarball());
