/**
 * Boots the qemu guest harness once for a guard test file and returns its checks, or the reason
 * it cannot run here (printed by the caller as the skip reason).
 *
 * @module
 */
import { exclusive } from "../_exclusive.ts";
import type { Check } from "./guest_lib.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
/** The harness script (override with CAMBLET_QEMU_HARNESS). */
export const HARNESS = Deno.env.get("CAMBLET_QEMU_HARNESS") ??
  `${ROOT}/../shared/qemu-harness/qemu-run.sh`;

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function onPath(cmd: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(":").some((d) => exists(`${d}/${cmd}`));
}

/** Why the guest cannot boot here, or undefined. */
export function guestUnavailable(): string | undefined {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.uid() !== 0) return "needs root (BPF LSM programs)";
  if (!exists(HARNESS)) return `no qemu harness at ${HARNESS} (set CAMBLET_QEMU_HARNESS)`;
  if (!onPath("qemu-system-x86_64")) return "qemu-system-x86_64 is not installed (qemu-system-x86)";
  let kernel = false;
  try {
    kernel = [...Deno.readDirSync("/boot")].some((e) => e.name.startsWith("vmlinuz-"));
  } catch { /* no /boot */ }
  if (!kernel) return "no /boot/vmlinuz-* (Debian package linux-image-amd64)";
  if (!onPath("gcc")) return "gcc is not installed (it builds the C probes the guest runs)";
  return undefined;
}

/**
 * Runs `script` (a path relative to the repository) with deno inside the guest, its shared DIR
 * a fresh temporary directory, and returns the checks it wrote to DIR/results.json.
 */
export async function runInGuest(
  script: string,
  extraArgs: string[] = [],
  before?: (dir: string) => Promise<Record<string, string> | void>,
): Promise<{ checks: Check[]; output: string; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "camblet-guard-guest-" });
  /** Host variables the guest gets (QH_ENV). */
  const env = (await before?.(dir)) ?? {};
  const deno = Deno.execPath();
  // A TCG guest takes both cores: never beside another machine-loading test (the lock).
  const o = await exclusive(() =>
    new Deno.Command(HARNESS, {
      args: [dir, deno, "run", "-A", `${ROOT}/${script}`, dir, ...extraArgs],
      env: { QH_TIMEOUT: "420", ...env, QH_ENV: Object.keys(env).join(" ") },
      stdout: "piped",
      stderr: "piped",
    }).output()
  );
  const output = new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr);
  let checks: Check[] = [];
  try {
    checks = JSON.parse(await Deno.readTextFile(`${dir}/results.json`));
  } catch {
    throw new Error(`The guest wrote no results (exit ${o.code}):\n${output.slice(-4000)}`);
  }
  return { checks, output, dir };
}
