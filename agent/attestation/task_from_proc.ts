/**
 * A kernel-shaped task context built from `/proc`, for `camblet-agent augment <pid>` and for
 * warming the cache before the kernel asks.
 *
 * @module
 */
import type { TaskContext } from "../../driver/payloads.ts";
import { cgroupV2Path, readCgroupPath } from "../../plugins/attestor/_lib/cgroup.ts";
import {
  namespaceInode,
  parseStatus,
  type ProcStatus,
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
  return build(
    pid,
    status,
    ns,
    await readExeLink(pid, procRoot),
    await readCgroupPath(pid, procRoot),
  );
}

/**
 * {@linkcode taskContextFromProc} with synchronous reads, for the proxy's per-connection path:
 * `/proc` answers from memory in microseconds, and the ten async ops cost ~3× the CPU (thread
 * pool round trips) on every new connection.
 */
export function taskContextFromProcSync(pid: number, procRoot = "/proc"): TaskContext | undefined {
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
  const ns = NS_KINDS.map((k) => namespaceInode(link(`${dir}/ns/${k}`)));
  const exe = link(`${dir}/exe`)?.replace(/ \(deleted\)$/, "");
  const cgroup = text(`${dir}/cgroup`);
  return build(pid, status, ns, exe, cgroup === undefined ? undefined : cgroupV2Path(cgroup));
}

function build(
  pid: number,
  status: ProcStatus,
  ns: (number | undefined)[],
  exe: string | undefined,
  cgroupPath: string | undefined,
): TaskContext {
  const [uts, ipc, mnt, pidNs, net, time, cgroup] = ns.map((n) => n ?? 0) as number[];
  return {
    pid,
    uid: status.uids[0],
    gid: status.gids[0],
    command_name: unescapeStatusName(status.name),
    command_path: exe ?? "",
    cgroup_path: cgroupPath ?? "",
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
