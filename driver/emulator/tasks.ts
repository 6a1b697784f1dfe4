/**
 * Task contexts as the module builds them (protocol doc §2.1): for a real process from /proc (the
 * way the kernel sees it), or synthetic ones for load tests.
 *
 * @module
 */
import type { TaskContext } from "../payloads.ts";

const NAMESPACES = ["uts", "ipc", "mnt", "pid", "net", "time", "cgroup"] as const;

function nsInode(pid: number, ns: string): number {
  try {
    const link = Deno.readLinkSync(`/proc/${pid}/ns/${ns}`);
    return Number(/\[(\d+)\]/.exec(link)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * The task context the kernel would send for `pid` (effective uid/gid, comm, resolved exe,
 * cgroup-v2 path, namespace inodes). Throws if the process does not exist.
 */
export function taskOf(pid: number): TaskContext {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const field = (name: string) => new RegExp(`^${name}:\\s*(\\d+)\\s+(\\d+)`, "m").exec(status);
  const cgroup = Deno.readTextFileSync(`/proc/${pid}/cgroup`);
  let commandPath = "";
  try {
    commandPath = Deno.readLinkSync(`/proc/${pid}/exe`);
  } catch { /* kernel threads have none */ }
  const namespace_ids = Object.fromEntries(
    NAMESPACES.map((n) => [n, nsInode(pid, n)]),
  ) as unknown as TaskContext["namespace_ids"];
  return {
    uid: Number(field("Uid")?.[2] ?? 0),
    gid: Number(field("Gid")?.[2] ?? 0),
    pid,
    command_path: commandPath,
    command_name: Deno.readTextFileSync(`/proc/${pid}/comm`).trim().slice(0, 15),
    cgroup_path: /^0::(.*)$/m.exec(cgroup)?.[1] ?? "/",
    namespace_ids,
  };
}

/** A plausible task context for load tests; `n` varies pid and name. */
export function syntheticTask(n: number, over: Partial<TaskContext> = {}): TaskContext {
  return {
    uid: 1000,
    gid: 1000,
    pid: 40000 + (n % 20000),
    command_path: "/usr/bin/python3.11",
    command_name: "python3",
    cgroup_path: "/user.slice/user-1000.slice/session-2.scope",
    namespace_ids: {
      uts: 4026531838,
      ipc: 4026531839,
      mnt: 4026531841,
      pid: 4026531836,
      net: 4026531840,
      time: 4026531834,
      cgroup: 4026531835,
    },
    ...over,
  };
}
