/**
 * A kernel-shaped task context built from `/proc`, for `camblet-agent augment <pid>`, for
 * warming the cache before the kernel asks, and for the proxy data plane's connections.
 *
 * @module
 */
import type { TaskContext } from "../../../driver/payloads.ts";
import { cgroupV2Path } from "./cgroup.ts";
import { exePath, namespaceInode, parseStatus, unescapeStatusName } from "../process/proc_files.ts";

const NS_KINDS = ["uts", "ipc", "mnt", "pid", "net", "time", "cgroup"] as const;

/**
 * What the kernel would send for `pid` (real uid/gid, comm, exe, cgroup v2 path, namespace
 * inodes), or `undefined` when there is no such process. `command_path` is the agent's view of
 * the exe link, which can differ from the kernel's `d_path` inside a container.
 *
 * Synchronous: `/proc` answers from memory in microseconds, and the proxy data plane calls this
 * for every new connection, where ten async reads cost ~3× the CPU (thread-pool round trips).
 */
export function taskContextFromProc(pid: number, procRoot = "/proc"): TaskContext | undefined {
  const dir = `${procRoot}/${pid}`;
  const text = (path: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return undefined;
    }
  };
  const link = (path: string) => {
    try {
      return Deno.readLinkSync(path);
    } catch {
      return undefined;
    }
  };
  const statusText = text(`${dir}/status`);
  const status = statusText === undefined ? undefined : parseStatus(statusText);
  if (!status) return undefined;
  const [uts, ipc, mnt, pidNs, net, time, cgroup] = NS_KINDS.map((k) =>
    namespaceInode(link(`${dir}/ns/${k}`)) ?? 0
  );
  const exe = link(`${dir}/exe`);
  const cgroupText = text(`${dir}/cgroup`);
  return {
    pid,
    uid: status.uids[0],
    gid: status.gids[0],
    command_name: unescapeStatusName(status.name),
    command_path: exe === undefined ? "" : exePath(exe),
    cgroup_path: (cgroupText === undefined ? undefined : cgroupV2Path(cgroupText)) ?? "",
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
