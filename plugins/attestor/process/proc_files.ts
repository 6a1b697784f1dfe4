/**
 * Readers for `/proc/<pid>/*`: status (ids, groups, tgid), stat (start time), cmdline, environ,
 * namespace inodes. Each returns `undefined` when the process is gone.
 *
 * @module
 */

/** Fields of `/proc/<pid>/status` the process collector uses. */
export interface ProcStatus {
  /** comm (escaped by the kernel: `\n` → `\\n`, `\\` → `\\\\`). */
  name: string;
  /** Thread-group id: the process id when `pid` is a thread. */
  tgid: number;
  /** real, effective, saved, filesystem. */
  uids: [number, number, number, number];
  gids: [number, number, number, number];
  /** Supplementary groups. */
  groups: number[];
}

/**
 * For `stat` and `status`, read on every augment: they never wait on the process's memory map
 * (unlike `cmdline` and `environ`), and a synchronous read costs microseconds where the async one
 * costs a trip through the blocking pool (under a burst of 100, half the time).
 */
function readTextNow(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return undefined;
  }
}

function ids(line: string | undefined): [number, number, number, number] | undefined {
  const n = (line ?? "").trim().split(/\s+/).map(Number);
  return n.length === 4 && n.every(Number.isInteger)
    ? n as [number, number, number, number]
    : undefined;
}

/** Parses `/proc/<pid>/status` text. */
export function parseStatus(text: string): ProcStatus | undefined {
  const f: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) f[line.slice(0, i)] = line.slice(i + 1).replace(/^\t/, "");
  }
  const uids = ids(f["Uid"]);
  const gids = ids(f["Gid"]);
  if (!uids || !gids || f["Name"] === undefined) return undefined;
  return {
    name: f["Name"],
    tgid: Number(f["Tgid"] ?? NaN),
    uids,
    gids,
    groups: (f["Groups"] ?? "").trim().split(/\s+/).filter(Boolean).map(Number),
  };
}

/** Reads `/proc/<pid>/status`. */
export function readStatus(pid: number, procRoot = "/proc"): Promise<ProcStatus | undefined> {
  const text = readTextNow(`${procRoot}/${pid}/status`);
  return Promise.resolve(text === undefined ? undefined : parseStatus(text));
}

/**
 * Start time of `pid` in clock ticks since boot (`/proc/<pid>/stat` field 22). With the pid it
 * identifies a process for its whole life: a reused pid has a later start time.
 */
export function readStartTime(pid: number, procRoot = "/proc"): Promise<number | undefined> {
  const text = readTextNow(`${procRoot}/${pid}/stat`);
  if (text === undefined) return Promise.resolve(undefined);
  // comm may hold spaces and parentheses: fields resume after the last ')'.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const v = Number(rest[19]);
  return Promise.resolve(Number.isFinite(v) ? v : undefined);
}

/** The command line, NUL-separated arguments joined with spaces (as gopsutil did). */
export async function readCmdline(pid: number, procRoot = "/proc"): Promise<string | undefined> {
  const text = await readText(`${procRoot}/${pid}/cmdline`);
  if (text === undefined) return undefined;
  return text.replace(/\0+$/, "").split("\0").join(" ");
}

/** The environment as name → value. Needs the same privileges as ptrace-read. */
export async function readEnviron(
  pid: number,
  procRoot = "/proc",
): Promise<Record<string, string> | undefined> {
  const text = await readText(`${procRoot}/${pid}/environ`);
  if (text === undefined) return undefined;
  const out: Record<string, string> = Object.create(null);
  for (const entry of text.split("\0")) {
    const i = entry.indexOf("=");
    if (i > 0) out[entry.slice(0, i)] = entry.slice(i + 1);
  }
  return out;
}

/** Namespace inode of `/proc/<pid>/ns/<kind>` (`mnt`, `pid`, `net`, …), or `undefined`. */
export async function readNamespaceId(
  pid: number,
  kind: string,
  procRoot = "/proc",
): Promise<number | undefined> {
  try {
    return namespaceInode(await Deno.readLink(`${procRoot}/${pid}/ns/${kind}`));
  } catch {
    return undefined;
  }
}

/** The inode of a namespace link target (`net:[4026531840]`), or `undefined`. */
export function namespaceInode(link: string | undefined): number | undefined {
  const m = link === undefined ? null : /\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : undefined;
}

/** `readlink /proc/<pid>/exe` (the agent's view of the path), or `undefined`. */
export async function readExeLink(pid: number, procRoot = "/proc"): Promise<string | undefined> {
  try {
    return exePath(await Deno.readLink(`${procRoot}/${pid}/exe`));
  } catch {
    return undefined;
  }
}

/** The path of an exe link target, without the ` (deleted)` the kernel adds for a removed file. */
export function exePath(link: string): string {
  return link.replace(/ \(deleted\)$/, "");
}

/** Undoes the kernel's escaping of `Name:` in status. */
export function unescapeStatusName(name: string): string {
  return name.replace(/\\(n|\\)/g, (_, c: string) => (c === "n" ? "\n" : "\\"));
}
