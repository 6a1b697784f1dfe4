/**
 * A kernel-shaped task context built from `/proc`, for `camblet-agent augment <pid>` and for
 * warming the cache before the kernel asks.
 *
 * @module
 */
import type { TaskContext } from "../../driver/payloads.ts";
import { readCgroupPath } from "../../plugins/attestor/_lib/cgroup.ts";
import {
  readExeLink,
  readNamespaceId,
  readStatus,
  unescapeStatusName,
} from "../../plugins/attestor/process/proc_files.ts";

const NS_KINDS = ["uts", "ipc", "mnt", "pid", "net", "time", "cgroup"] as const;

/**
 * What the kernel would send for `pid` (real uid/gid, comm, exe, cgroup v2 path, namespace
 * inodes), or `undefined` when there is no such process. `command_path` is the agent's view of
 * the exe link, which can differ from the kernel's `d_path` inside a container.
 */
export async function taskContextFromProc(
  pid: number,
  procRoot = "/proc",
): Promise<TaskContext | undefined> {
  const status = await readStatus(pid, procRoot);
  if (!status) return undefined;
  const ns = await Promise.all(NS_KINDS.map((k) => readNamespaceId(pid, k, procRoot)));
  const [uts, ipc, mnt, pidNs, net, time, cgroup] = ns.map((n) => n ?? 0) as number[];
  return {
    pid,
    uid: status.uids[0],
    gid: status.gids[0],
    command_name: unescapeStatusName(status.name),
    command_path: await readExeLink(pid, procRoot) ?? "",
    cgroup_path: await readCgroupPath(pid, procRoot) ?? "",
    namespace_ids: {
      uts: uts!,
      ipc: ipc!,
      mnt: mnt!,
      pid: pidNs!,
      net: net!,
      time: time!,
      cgroup: cgroup!,
    },
  };
}

/** Pids of all processes (numeric entries of `/proc`). */
export async function listPids(procRoot = "/proc"): Promise<number[]> {
  const out: number[] = [];
  for await (const e of Deno.readDir(procRoot)) {
    if (/^\d+$/.test(e.name)) out.push(Number(e.name));
  }
  return out;
}
