/**
 * Container and pod identifiers from a cgroup v2 path, as the kernel's task context carries it
 * (`cgroup_path`) or `/proc/<pid>/cgroup` shows it (`0::` line).
 *
 * Layouts seen in the wild:
 * - Docker, cgroupfs driver: `/docker/<64 hex>`
 * - Docker/containerd/CRI-O, systemd driver: `/system.slice/docker-<id>.scope`,
 *   `…/cri-containerd-<id>.scope`, `…/crio-<id>.scope`
 * - Kubernetes: `/kubepods/burstable/pod<uid>/<id>` or
 *   `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope`
 * - containerd `ctr`/nerdctl: `/<namespace>/<id>` (ids may be any name there)
 *
 * @module
 */

const CONTAINER_ID = /(?:^|[-:])([0-9a-f]{64})(?:\.scope)?$/;
const POD_UID =
  /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$/;

/**
 * The 64-hex container id nearest the leaf of `path`, or `undefined`.
 *
 * @example
 * ```ts
 * import { containerIdFromCgroup } from "./cgroup.ts";
 * containerIdFromCgroup("/system.slice/docker-" + "a".repeat(64) + ".scope"); // "aaaa…"
 * ```
 */
export function containerIdFromCgroup(path: string): string | undefined {
  const segments = path.split("/").filter(Boolean);
  for (let i = segments.length - 1; i >= 0; i--) {
    const m = CONTAINER_ID.exec(segments[i]!);
    if (m) return m[1];
  }
  return undefined;
}

/** The Kubernetes pod UID (dashed form) in `path`, or `undefined`. */
export function podUidFromCgroup(path: string): string | undefined {
  for (const segment of path.split("/").reverse()) {
    const m = POD_UID.exec(segment);
    if (m) return m[1]!.replaceAll("_", "-");
  }
  return undefined;
}

/**
 * The cgroup v2 path of `pid` from `/proc/<pid>/cgroup` (the `0::` line), or `undefined` when the
 * process is gone or has no v2 membership.
 */
export async function readCgroupPath(pid: number, procRoot = "/proc"): Promise<string | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(`${procRoot}/${pid}/cgroup`);
  } catch {
    return undefined;
  }
  return cgroupV2Path(text);
}

/** The `0::` (cgroup v2) path of `/proc/<pid>/cgroup` text, if any. */
export function cgroupV2Path(text: string): string | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("0::")) return line.slice(3);
  }
  return undefined;
}

/** The task's cgroup path: the kernel's when it sent one, else `/proc`'s. */
export async function cgroupPathOf(
  task: { pid: number; cgroup_path: string },
  procRoot = "/proc",
): Promise<string | undefined> {
  return task.cgroup_path !== "" ? task.cgroup_path : await readCgroupPath(task.pid, procRoot);
}
