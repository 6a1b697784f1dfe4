/**
 * Hosts of our own for the data-plane tests: two network namespaces joined by a veth pair
 * (10.199.0.1 + fd99::1 on host "a", 10.199.0.2 + fd99::2 on host "b"), processes run inside
 * them with `nsenter --net` (not `ip netns exec`, which remounts /sys and hides cgroup v2), and a
 * cleanup that kills every process started here and deletes both namespaces.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { BpfObject } from "../../driver/bpf/bpf_object.ts";
import { isCgroup2 } from "../../driver/bpf/libbpf.ts";
import { STEER_OBJECT_BASE64 } from "../../driver/bpf/steer_object.ts";
import { CGROUP2_CANDIDATES } from "../../driver/bpf/steering.ts";

/** Addresses of the two hosts. */
export const HOST_A = { ip4: "10.199.0.1", ip6: "fd99::1" } as const;
export const HOST_B = { ip4: "10.199.0.2", ip6: "fd99::2" } as const;

async function run(
  cmd: string,
  args: string[],
): Promise<{ ok: boolean; out: string; err: string }> {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const d = new TextDecoder();
    return { ok: o.success, out: d.decode(o.stdout), err: d.decode(o.stderr) };
  } catch (e) {
    return { ok: false, out: "", err: (e as Error).message };
  }
}

/** Why the namespace tests cannot run here, or `undefined` when they can. */
export async function netnsSkipReason(): Promise<string | undefined> {
  if (Deno.build.os !== "linux") return "needs Linux";
  if (Deno.uid() !== 0) return "needs root (network namespaces, BPF)";
  for (const tool of ["ip", "nsenter", "curl", "python3", "tcpdump", "openssl"]) {
    if (!(await run("sh", ["-c", `command -v ${tool}`])).ok) return `needs ${tool} on PATH`;
  }
  try {
    Deno.dlopen("libbpf.so.1", { libbpf_major_version: { parameters: [], result: "u32" } }).close();
  } catch {
    return "needs libbpf.so.1 (Debian package libbpf1)";
  }
  if (!CGROUP2_CANDIDATES.some((p) => isCgroup2(p))) return "needs a cgroup v2 mount";
  const probe = `cbt-probe-${Deno.pid}`;
  const made = await run("ip", ["netns", "add", probe]);
  if (!made.ok) return `cannot create network namespaces: ${made.err.trim()}`;
  await run("ip", ["netns", "del", probe]);
  try {
    // Load (verify) the programs without attaching them anywhere.
    BpfObject.load(Buffer.from(STEER_OBJECT_BASE64, "base64"), "steering object (probe)").close();
  } catch (e) {
    return `cannot load BPF programs: ${(e as Error).message}`;
  }
  return undefined;
}

const OURS = /^(cbt-[a-z0-9]+-(\d+)-[ab])\b/;

async function sweepStale(): Promise<void> {
  const list = await run("ip", ["netns", "list"]);
  for (const line of list.out.split("\n")) {
    const m = OURS.exec(line.trim());
    if (!m) continue;
    try {
      await Deno.stat(`/proc/${m[2]}`);
    } catch {
      await run("ip", ["netns", "del", m[1]!]);
    }
  }
}

/** A process started in a namespace, with its output collected. */
export class NsProcess {
  readonly child: Deno.ChildProcess;
  #stdout = "";
  #stderr = "";
  #done: Promise<Deno.CommandStatus>;
  #reads: Promise<void>[];
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;

  constructor(child: Deno.ChildProcess, stdin: boolean) {
    this.child = child;
    this.#writer = stdin ? child.stdin.getWriter() : undefined;
    const collect = async (s: ReadableStream<Uint8Array>, into: "out" | "err") => {
      const dec = new TextDecoder();
      for await (const c of s) {
        if (into === "out") this.#stdout += dec.decode(c, { stream: true });
        else this.#stderr += dec.decode(c, { stream: true });
      }
    };
    this.#reads = [collect(child.stdout, "out"), collect(child.stderr, "err")];
    this.#done = child.status;
  }

  get stdout(): string {
    return this.#stdout;
  }
  get stderr(): string {
    return this.#stderr;
  }

  /** Resolves when stdout or stderr matches `re`; rejects after `timeoutMs` or exit. */
  async waitFor(
    re: RegExp,
    timeoutMs = 15_000,
    stream: "out" | "err" = "out",
  ): Promise<RegExpMatchArray> {
    const end = Date.now() + timeoutMs;
    let exited = false;
    this.#done.then(() => exited = true);
    while (Date.now() < end) {
      const m = (stream === "out" ? this.#stdout : this.#stderr).match(re);
      if (m) return m;
      if (exited) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(
      `Timed out waiting for ${re} (exited: ${exited})\nstdout: ${this.#stdout}\nstderr: ${this.#stderr}`,
    );
  }

  /** Writes a line to stdin. */
  async send(line: string): Promise<void> {
    await this.#writer!.write(new TextEncoder().encode(line + "\n"));
  }

  /** Sends `signal` (default SIGTERM), waits for the exit; SIGKILL after `graceMs`. */
  async stop(signal: Deno.Signal = "SIGTERM", graceMs = 5000): Promise<Deno.CommandStatus> {
    try {
      this.child.kill(signal);
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch { /* gone */ }
    }, graceMs);
    const st = await this.#done;
    clearTimeout(timer);
    try {
      await this.#writer?.close();
    } catch { /* closed */ }
    await Promise.all(this.#reads);
    return st;
  }

  /** The exit status, once the process ends by itself. */
  async finished(): Promise<Deno.CommandStatus> {
    const st = await this.#done;
    try {
      await this.#writer?.close();
    } catch { /* closed */ }
    await Promise.all(this.#reads);
    return st;
  }
}

/** Two namespaces joined by a veth pair. Create with {@linkcode NetnsPair.create}. */
export class NetnsPair {
  readonly a: string;
  readonly b: string;
  #procs = new Set<NsProcess>();

  private constructor(a: string, b: string) {
    this.a = a;
    this.b = b;
  }

  /**
   * Creates the namespaces `cbt-<tag>-<pid>-a` and `-b`, addresses up. Namespaces left by a
   * test process that was killed (its pid is gone) are deleted first.
   */
  static async create(tag: string): Promise<NetnsPair> {
    await sweepStale();
    const pair = new NetnsPair(`cbt-${tag}-${Deno.pid}-a`, `cbt-${tag}-${Deno.pid}-b`);
    const steps: string[][] = [
      ["netns", "add", pair.a],
      ["netns", "add", pair.b],
      [
        "-n",
        pair.a,
        "link",
        "add",
        "veth-a",
        "type",
        "veth",
        "peer",
        "name",
        "veth-b",
        "netns",
        pair.b,
      ],
      ["-n", pair.a, "link", "set", "lo", "up"],
      ["-n", pair.b, "link", "set", "lo", "up"],
      ["-n", pair.a, "addr", "add", `${HOST_A.ip4}/24`, "dev", "veth-a"],
      ["-n", pair.b, "addr", "add", `${HOST_B.ip4}/24`, "dev", "veth-b"],
      ["-n", pair.a, "-6", "addr", "add", `${HOST_A.ip6}/64`, "dev", "veth-a", "nodad"],
      ["-n", pair.b, "-6", "addr", "add", `${HOST_B.ip6}/64`, "dev", "veth-b", "nodad"],
      ["-n", pair.a, "link", "set", "veth-a", "up"],
      ["-n", pair.b, "link", "set", "veth-b", "up"],
    ];
    for (const s of steps) {
      const r = await run("ip", s);
      if (!r.ok) {
        await pair.#cleanupNamespaces();
        throw new Error(`ip ${s.join(" ")} failed: ${r.err}`);
      }
    }
    return pair;
  }

  /** The command line that runs `cmd` in namespace `ns`. */
  static wrap(ns: string, cmd: string[]): [string, string[]] {
    return ["nsenter", [`--net=/run/netns/${ns}`, "--", ...cmd]];
  }

  /** Starts `cmd` in `ns`; killed by {@linkcode cleanup}. */
  spawn(
    ns: string,
    cmd: string[],
    options: { stdin?: boolean; env?: Record<string, string>; clearEnv?: boolean } = {},
  ): NsProcess {
    const [c, args] = NetnsPair.wrap(ns, cmd);
    const child = new Deno.Command(c, {
      args,
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      ...(options.env ? { env: options.env } : {}),
      ...(options.clearEnv ? { clearEnv: true } : {}),
    }).spawn();
    const p = new NsProcess(child, options.stdin ?? false);
    this.#procs.add(p);
    p.finished().then(() => this.#procs.delete(p));
    return p;
  }

  /** Runs `cmd` in `ns` to completion (killed after `timeoutMs`). */
  async exec(
    ns: string,
    cmd: string[],
    timeoutMs = 30_000,
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const p = this.spawn(ns, cmd);
    const timer = setTimeout(() => p.stop("SIGKILL"), timeoutMs);
    const st = await p.finished();
    clearTimeout(timer);
    return { code: st.code, stdout: p.stdout, stderr: p.stderr };
  }

  async #cleanupNamespaces(): Promise<void> {
    for (const ns of [this.a, this.b]) await run("ip", ["netns", "del", ns]);
  }

  /** Stops every process started here, then deletes both namespaces (and the veth pair). */
  async cleanup(): Promise<void> {
    await Promise.all([...this.#procs].map((p) => p.stop("SIGKILL", 1000)));
    await this.#cleanupNamespaces();
  }
}
