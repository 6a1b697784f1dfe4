/**
 * The TCP listening sockets of the agent's network namespace and the processes that own them,
 * from `/proc/net/tcp{,6}` and `/proc/<pid>/fd`. The proxy data plane uses it to find which local
 * ports inbound policies protect (the kernel module sees the accepting process directly; we must
 * look it up).
 *
 * @module
 */

/** One listening socket. */
export interface ListeningSocket {
  /** Local address as printed by the kernel, decoded (IPv4 dotted, IPv6 compressed-free hex). */
  ip: string;
  port: number;
  inode: number;
  /** The owning process, when found (a socket passed between processes: the first one seen). */
  pid?: number;
}

const LISTEN = "0A";

function hexIp4(h: string): string {
  // /proc prints the address as a host-order (little-endian) u32.
  const n = parseInt(h, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join(".");
}

function hexIp6(h: string): string {
  const groups: string[] = [];
  for (let w = 0; w < 4; w++) {
    const word = h.slice(w * 8, w * 8 + 8);
    // Each 32-bit word is host-order: reverse its bytes.
    const bytes = word.match(/../g)!.reverse().join("");
    groups.push(bytes.slice(0, 4), bytes.slice(4, 8));
  }
  return groups.join(":").toLowerCase();
}

/** Parses the text of `/proc/net/tcp` or `/proc/net/tcp6`: only sockets in LISTEN state. */
export function parseProcNetTcp(text: string): ListeningSocket[] {
  const out: ListeningSocket[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== LISTEN) continue;
    const [ipHex, portHex] = f[1]!.split(":") as [string, string];
    out.push({
      ip: ipHex.length === 8 ? hexIp4(ipHex) : hexIp6(ipHex),
      port: parseInt(portHex, 16),
      inode: Number(f[9]),
    });
  }
  return out;
}

async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return "";
  }
}

/**
 * Finds listening sockets and their owners. Owners are cached by inode, so `/proc/<pid>/fd` is
 * walked only when a listener appears whose owner is not known yet.
 */
export class ListenerTable {
  readonly #proc: string;
  #owners = new Map<number, number>();

  constructor(procRoot = "/proc") {
    this.#proc = procRoot;
  }

  /** The listening sockets now, with owners. */
  async scan(): Promise<ListeningSocket[]> {
    const list = [
      ...parseProcNetTcp(await readText(`${this.#proc}/net/tcp`)),
      ...parseProcNetTcp(await readText(`${this.#proc}/net/tcp6`)),
    ];
    const live = new Set(list.map((l) => l.inode));
    for (const inode of this.#owners.keys()) if (!live.has(inode)) this.#owners.delete(inode);
    if (list.some((l) => !this.#owners.has(l.inode))) await this.#walk(live);
    for (const l of list) {
      const pid = this.#owners.get(l.inode);
      if (pid !== undefined) l.pid = pid;
    }
    return list;
  }

  async #walk(want: Set<number>): Promise<void> {
    for await (const e of Deno.readDir(this.#proc)) {
      if (!/^\d+$/.test(e.name)) continue;
      const pid = Number(e.name);
      try {
        for await (const fd of Deno.readDir(`${this.#proc}/${pid}/fd`)) {
          let target: string;
          try {
            target = await Deno.readLink(`${this.#proc}/${pid}/fd/${fd.name}`);
          } catch {
            continue;
          }
          const m = /^socket:\[(\d+)\]$/.exec(target);
          if (!m) continue;
          const inode = Number(m[1]);
          if (want.has(inode) && !this.#owners.has(inode)) this.#owners.set(inode, pid);
        }
      } catch {
        // Gone, or not ours to read.
      }
    }
  }
}
