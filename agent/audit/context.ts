/**
 * The process context a syscall is judged with: the kernel's record (ids, comm, six ancestors,
 * cgroup) plus what user space knows — executables and argv from earlier execs, cwd, container
 * id from the cgroup, the workload's labels and SPIFFE ID from attestation. Short-lived
 * processes are often gone when their event is read, so exec paths come from the exec events
 * themselves and container ids are cached by kernel cgroup id.
 *
 * @module
 */
import { cgroupV2Path, containerIdFromCgroup } from "../../plugins/attestor/_lib/cgroup.ts";
import type { RawAuditEvent } from "../../driver/bpf/audit_layout.ts";

/** One process in the input's ancestor chain, parent first. */
export interface AncestorInput {
  pid: number;
  name: string;
  exe: string;
}

/** The document a rule sees as `input` (and one line of a recorded events.jsonl). */
export interface AuditInput {
  time: string;
  syscall: string;
  ret: number;
  /** Absolute path (relative ones resolved against the cwd or the dirfd), or "". */
  path: string;
  path2: string;
  /** open(2) flags (openat2: open_how.flags); absent for other syscalls. */
  flags?: number;
  /**
   * `flags` decoded (x86_64 O_* values): lib.rego's `flags` reads these instead of five bits.and
   * on wasm's big numbers; absent with `flags`.
   */
  open_flags?: OpenFlags;
  /** chmod mode or open mode. */
  mode: number;
  argv: string[];
  exe_name: string;
  addr: { family: number; ip: string; port: number } | null;
  ptrace: { request: number; pid: number } | null;
  /** mount(2) flags (MS_*). */
  mount: { flags: number } | null;
  proc: {
    pid: number;
    tid: number;
    ppid: number;
    name: string;
    exe: string;
    cwd: string;
    uid: number;
    gid: number;
    cmdline: string;
  };
  ancestors: AncestorInput[];
  container: { id: string; labels: Record<string, string> };
  /** The Kubernetes pod the workload runs in (see {@linkcode podOf}), or null (older recordings: absent). */
  pod?: PodInput | null;
  cgroup_id: string;
  labels: string[];
  spiffe_id: string;
  /**
   * What the loaded policies say of the workload (connect only, else absent): `egress_policy`
   * null when unknown (no labels, or no policy source asked).
   */
  workload?: { egress_policy: boolean | null };
}

/** A workload's Kubernetes pod, as its labels tell it. */
export interface PodInput {
  name: string;
  namespace: string;
  /** From the CRI labels (the kubelet attestor has none). */
  uid: string;
  /** The container's name in the pod spec. */
  container: string;
  /** The pod's own labels (the kubelet attestor's `k8s:label:<k>`). */
  labels: Record<string, string>;
}

/** Container runtimes' label prefixes (the docker and containerd attestors). */
const RUNTIME_LABELS = ["docker:label:", "containerd:label:"];

/** The CRI labels the kubelet sets on every container it starts, by PodInput field. */
const CRI_LABELS = new Map<string, "name" | "namespace" | "uid" | "container">([
  ["io.kubernetes.pod.name", "name"],
  ["io.kubernetes.pod.namespace", "namespace"],
  ["io.kubernetes.pod.uid", "uid"],
  ["io.kubernetes.container.name", "container"],
]);

/**
 * The pod of a workload with these attested labels, or null when none says one: the kubelet
 * attestor's `k8s:pod:name`, `k8s:pod:namespace`, `k8s:container:name` and `k8s:label:<k>` (the
 * pod's labels), else the CRI labels a container runtime reports (`docker:label:` or
 * `containerd:label:` + `io.kubernetes.pod.{name,namespace,uid}`, `io.kubernetes.container.name`;
 * the kubelet puts the pod's own labels only on the pod sandbox, so they come from the kubelet).
 */
export function podOf(labels: readonly string[]): PodInput | null {
  const k8s: Partial<PodInput> = {};
  const cri: Partial<PodInput> = {};
  const podLabels: [string, string][] = [];
  let found = false;
  for (const l of labels) {
    const i = l.indexOf("=");
    if (i <= 0) continue;
    const k = l.slice(0, i);
    const v = l.slice(i + 1);
    if (k.startsWith("k8s:")) {
      const f = k.slice(4);
      if (f === "pod:name") k8s.name = v;
      else if (f === "pod:namespace") k8s.namespace = v;
      else if (f === "container:name") k8s.container = v;
      else if (f.startsWith("label:")) podLabels.push([f.slice(6), v]);
      else continue;
      found = true;
      continue;
    }
    for (const p of RUNTIME_LABELS) {
      const f = k.startsWith(p) ? CRI_LABELS.get(k.slice(p.length)) : undefined;
      if (f) {
        cri[f] = v;
        found = true;
      }
    }
  }
  if (!found) return null;
  return {
    name: k8s.name ?? cri.name ?? "",
    namespace: k8s.namespace ?? cri.namespace ?? "",
    uid: cri.uid ?? "",
    container: k8s.container ?? cri.container ?? "",
    labels: dataObject(podLabels),
  };
}

/**
 * An object of `entries` for the wasm input, as own data properties (a `__proto__` key is a key,
 * not a prototype; later entries win). Not null-prototype: such objects (and frozen ones) take
 * JSON.stringify's slow path, which made every input's serialization ~4× slower (0.66 -> 2.7 µs);
 * nothing looks keys up in it.
 */
function dataObject(entries: [string, string][]): Record<string, string> {
  return Object.fromEntries(entries);
}

/** open(2) flags as named booleans. */
export interface OpenFlags {
  read: boolean;
  write: boolean;
  create: boolean;
  trunc: boolean;
  append: boolean;
}

/** `flags` of an open as lib.rego names them (O_ACCMODE 3, O_CREAT 64, O_TRUNC 512, O_APPEND 1024). */
export function openFlags(flags: number): OpenFlags {
  const acc = flags & 3;
  return {
    read: acc !== 1,
    write: acc !== 0,
    create: (flags & 64) !== 0,
    trunc: (flags & 512) !== 0,
    append: (flags & 1024) !== 0,
  };
}

/** Where labels and identities come from (the daemon's attestation; tests give their own). */
export interface ContextSources {
  /** `name=value` labels of a running process (attestation); may reject when it is gone. */
  labelsOf?(pid: number): Promise<string[]>;
  /** The SPIFFE ID a workload with these labels gets, if any. */
  spiffeIdOf?(labels: string[]): string | undefined;
  /** Whether a loaded policy gives a workload with these labels egress (undefined: unknown). */
  egressPolicyOf?(labels: string[]): boolean | undefined;
  /** Root of the proc filesystem (tests). */
  procRoot?: string;
}

const AT_FDCWD = -100n;

/** Syscalls whose path (argument 1) is relative to a dirfd (argument 0). */
const AT_CALLS = new Set([
  "openat",
  "openat2",
  "unlinkat",
  "renameat",
  "renameat2",
  "fchmodat",
  "fchownat",
  "execveat",
]);

function readlink(p: string): string {
  try {
    return Deno.readLinkSync(p);
  } catch {
    return "";
  }
}

function join(dir: string, rel: string): string {
  if (rel === "" || rel.startsWith("/")) return rel;
  const parts = dir.split("/").filter((s) => s);
  for (const seg of rel.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") parts.pop();
    else parts.push(seg);
  }
  return "/" + parts.join("/");
}

/** Signed view of a syscall argument (dirfd). */
const signed = (v: bigint) => BigInt.asIntN(64, v);

interface ProcInfo {
  exe: string;
  argv: string[];
  cwd: string;
  /** Thread comms this program was seen with (the kernel's, checked against /proc). */
  comms?: Set<string>;
}

/** Most thread names remembered per program (a pool of named workers). */
const COMMS_MAX = 16;

interface CgroupInfo {
  containerId: string;
  labels: string[] | undefined;
}

const GONE: ProcInfo = Object.freeze({ exe: "", argv: [], cwd: "" }) as ProcInfo;
/** How long a pid /proc did not have is not asked for again (pids are reused, slowly). */
const GONE_TTL_MS = 1000;

/** Label prefix of container runtime labels (docker attestor: `docker:label:<k>=<v>`). */
function containerLabels(labels: string[]): Record<string, string> {
  const out: [string, string][] = [];
  for (const l of labels) {
    const i = l.indexOf("=");
    if (i > 0) out.push([l.slice(0, i), l.slice(i + 1)]);
  }
  return dataObject(out);
}

/** The process attestor's label namespace (plugins/attestor/process): facts of one program. */
const PROCESS_LABELS = "process:";

/**
 * `labels` with the process attestor's replaced by what the kernel said at event `e` (exe
 * when known), as that attestor labels a task whose /proc is another process's: pid, name,
 * real uid and gid, binary path. The other attestors' labels (container, pod, unit, host) are
 * the cgroup's and host's, which an exec does not change.
 */
function eventProcessLabels(labels: string[], e: RawAuditEvent, exe: string): string[] {
  const out = labels.filter((l) => !l.startsWith(PROCESS_LABELS));
  out.push(
    `${PROCESS_LABELS}pid=${e.pid}`,
    `${PROCESS_LABELS}name=${e.comm}`,
    `${PROCESS_LABELS}uid:real=${e.uid}`,
    `${PROCESS_LABELS}gid:real=${e.gid}`,
  );
  if (exe !== "") out.push(`${PROCESS_LABELS}binary:path=${exe}`);
  return out.sort();
}

/** What an input derives from a labels array (arrays are cached per cgroup and pid). */
interface FromLabels {
  container: Record<string, string>;
  pod: PodInput | null;
}

/** Builds {@linkcode AuditInput}s; keeps a process table of what it saw exec. */
export class ContextBuilder {
  #fromLabels = new WeakMap<string[], FromLabels>();

  #derived(labels: string[]): FromLabels {
    if (labels.length === 0) return { container: {}, pod: null };
    let d = this.#fromLabels.get(labels);
    if (!d) {
      d = { container: containerLabels(labels), pod: podOf(labels) };
      this.#fromLabels.set(labels, d);
    }
    return d;
  }

  #procs = new Map<number, ProcInfo>();
  #cgroups = new Map<string, CgroupInfo>();
  #pidLabels = new Map<number, string[]>();
  /** Pids /proc no longer has, until when (ms). */
  #gone = new Map<number, number>();
  #src: ContextSources;
  #proc: string;
  #bootEpochMs: number;

  constructor(sources: ContextSources = {}) {
    this.#src = sources;
    this.#proc = sources.procRoot ?? "/proc";
    let uptime = 0;
    try {
      uptime = parseFloat(Deno.readTextFileSync(`${this.#proc}/uptime`).split(" ")[0]!) * 1000;
    } catch {
      // no /proc/uptime: times are reception times
    }
    this.#bootEpochMs = Date.now() - uptime;
  }

  /** Processes known from exec events or /proc (for tests and status). */
  get processes(): number {
    return this.#procs.size;
  }

  /**
   * What is known of `pid`'s program: from its exec event, else from /proc — unless `at` (the
   * event's thread and its comm, from the kernel) shows that /proc now has another program:
   * the thread's comm changed (or, the thread gone, the leader's is not the event's comm: an
   * exec ends every other thread and renames the leader). Then only the cwd is kept (exec does not change it) and nothing is cached.
   *
   * Entries are keyed by pid, which the kernel reuses: a comm the entry's program was not seen
   * with is checked against /proc (another thread's name, or another process under a reused
   * pid whose exec was not seen: then the entry and its labels are dropped and read again).
   */
  #info(pid: number, at?: { tid: number; comm: string }): ProcInfo {
    let p = this.#procs.get(pid);
    if (p && at && !p.comms?.has(at.comm) && this.#sameComm(pid, at)) {
      const exe = readlink(`${this.#proc}/${pid}/exe`);
      if (exe === "" || exe === p.exe) {
        p.comms ??= new Set();
        if (p.comms.size < COMMS_MAX) p.comms.add(at.comm);
      } else {
        this.#procs.delete(pid);
        this.#pidLabels.delete(pid);
        p = undefined;
      }
    }
    if (!p) {
      // A process already gone: do not ask /proc again for every event it left behind.
      const until = this.#gone.get(pid);
      if (until !== undefined && until > Date.now()) return GONE;
      let argv: string[] = [];
      try {
        argv = Deno.readTextFileSync(`${this.#proc}/${pid}/cmdline`).split("\0").filter((s) => s);
      } catch {
        // gone
      }
      p = {
        exe: readlink(`${this.#proc}/${pid}/exe`),
        argv,
        cwd: readlink(`${this.#proc}/${pid}/cwd`),
      };
      if (p.exe === "" && p.cwd === "") this.#markGone(pid);
      else if (at && !this.#sameComm(pid, at)) {
        return { exe: "", argv: [], cwd: p.cwd };
      } else {
        if (at) p.comms = new Set([at.comm]);
        this.#procs.set(pid, p);
      }
      if (this.#procs.size > 65536) this.#procs.delete(this.#procs.keys().next().value!);
    }
    return p;
  }

  /**
   * Whether /proc still shows `at.comm` for the event's thread, or (the thread gone: a pool
   * thread that exited, or an exec that ended it) for the process's leader.
   */
  #sameComm(pid: number, at: { tid: number; comm: string }): boolean {
    const c = this.#commOf(pid, at.tid) ?? (at.tid !== pid ? this.#commOf(pid, pid) : undefined);
    return c === at.comm;
  }

  /** The comm of thread `tid` of `pid` now, or `undefined` when it is gone. */
  #commOf(pid: number, tid: number): string | undefined {
    try {
      return Deno.readTextFileSync(`${this.#proc}/${pid}/task/${tid}/comm`).replace(/\n$/, "");
    } catch {
      return undefined;
    }
  }

  /**
   * Whether `e`'s process still runs the event's program (whose exe is `exe`, "" when unknown),
   * runs another one now, or is gone. Attestation reads /proc when it is asked, so a process that
   * exec'd after the event would otherwise be labelled as its new program. The exe link (if
   * known) and the calling thread's comm must both be the event's; a thread gone since counts
   * by the exe, or with none known by the leader's comm (an exec ends every other thread).
   */
  #running(e: RawAuditEvent, exe: string): "same" | "other" | "gone" {
    const live = readlink(`${this.#proc}/${e.pid}/exe`);
    if (live === "") return "gone";
    if (exe !== "" && live !== exe) return "other";
    const comm = this.#commOf(e.pid, e.tid);
    if (comm !== undefined) return comm === e.comm ? "same" : "other";
    // The thread is gone: the exe matched, or the leader still has the event's comm.
    return exe !== "" || this.#commOf(e.pid, e.pid) === e.comm ? "same" : "other";
  }

  /**
   * Labels of `e`'s process by attestation, or `undefined` when there is no answer (gone: the
   * source may still know it, so it is asked). When the process runs another program by now
   * (before or after the answer: an exec while attestation read /proc), the process attestor's
   * per-process labels describe that program: they are replaced by the event's own facts.
   */
  async #attest(e: RawAuditEvent, exe: string): Promise<string[] | undefined> {
    const before = this.#running(e, exe);
    const l = await this.#src.labelsOf!(e.pid).catch(() => undefined);
    if (l === undefined) return undefined;
    return before === "other" || this.#running(e, exe) === "other"
      ? eventProcessLabels(l, e, exe)
      : l;
  }

  #markGone(pid: number): void {
    this.#gone.set(pid, Date.now() + GONE_TTL_MS);
    if (this.#gone.size > 65536) this.#gone.delete(this.#gone.keys().next().value!);
  }

  async #cgroup(e: RawAuditEvent, exe: string): Promise<CgroupInfo> {
    const key = String(e.cgroupId);
    let c = this.#cgroups.get(key);
    if (c) return c;
    let path: string | undefined;
    const until = this.#gone.get(e.pid);
    if (until === undefined || until <= Date.now()) {
      try {
        path = cgroupV2Path(Deno.readTextFileSync(`${this.#proc}/${e.pid}/cgroup`));
      } catch {
        this.#markGone(e.pid);
      }
    }
    if (path === undefined) return { containerId: "", labels: undefined };
    const containerId = containerIdFromCgroup(path) ?? "";
    let labels: string[] | undefined;
    if (containerId !== "" && this.#src.labelsOf) {
      labels = await this.#attest(e, exe);
    }
    c = { containerId, labels };
    if (containerId === "" || labels !== undefined) this.#cgroups.set(key, c);
    return c;
  }

  async #labels(e: RawAuditEvent, cg: CgroupInfo, exe: string): Promise<string[]> {
    if (cg.labels) return cg.labels;
    if (!this.#src.labelsOf) return [];
    // Cached per pid until its next exec event (which deletes it): the same program.
    const hit = this.#pidLabels.get(e.pid);
    if (hit) return hit;
    const l = await this.#attest(e, exe);
    if (l === undefined) {
      // Gone: the nearest ancestor's labels (its workload ran this child).
      for (const a of e.ancestors) {
        const al = this.#pidLabels.get(a.pid);
        if (al) return al;
      }
      return [];
    }
    this.#pidLabels.set(e.pid, l);
    if (this.#pidLabels.size > 65536) this.#pidLabels.delete(this.#pidLabels.keys().next().value!);
    return l;
  }

  #lastMs = NaN;
  #lastTime = "";

  /** ISO time of a boot-clock timestamp (one Date per millisecond: floods share it). */
  #time(ts: bigint): string {
    const ms = this.#bootEpochMs + Number(ts / 1_000_000n);
    if (ms !== this.#lastMs) [this.#lastMs, this.#lastTime] = [ms, new Date(ms).toISOString()];
    return this.#lastTime;
  }

  /** The rule input of `e`. */
  async build(e: RawAuditEvent): Promise<AuditInput> {
    const isExec = e.syscall === "execve" || e.syscall === "execveat";
    // A successful exec's comm is the new program's: its /proc is the event's (no check).
    const at = isExec && e.ret === 0 ? undefined : { tid: e.tid, comm: e.comm };
    const before = this.#info(e.pid, at);
    const cwd = before.cwd;
    const resolve = (p: string, dirfdArg: number | undefined) => {
      if (p === "" || p.startsWith("/")) return p;
      const dirfd = dirfdArg === undefined ? AT_FDCWD : signed(e.args[dirfdArg]!);
      const base = dirfd === AT_FDCWD ? cwd : readlink(`${this.#proc}/${e.pid}/fd/${dirfd}`);
      return base === "" ? p : join(base, p);
    };
    const atCall = AT_CALLS.has(e.syscall);
    const path = resolve(e.path, atCall ? 0 : undefined);
    const path2 = resolve(
      e.path2,
      e.syscall === "renameat" || e.syscall === "renameat2" ? 2 : undefined,
    );
    if (isExec && e.ret === 0) {
      // The new image: its exe link while /proc still has it (the comm is the event's), else the
      // path it was exec'd by (the process is gone, or has exec'd again since).
      const live = this.#commOf(e.pid, e.pid) === e.comm
        ? readlink(`${this.#proc}/${e.pid}/exe`)
        : "";
      const exe = live || path;
      this.#procs.set(e.pid, { exe, argv: e.argv, cwd, comms: new Set([e.comm]) });
      this.#gone.delete(e.pid);
      this.#pidLabels.delete(e.pid); // re-attest: a new program may be a new workload
    }
    const me = this.#info(e.pid, at);
    const cg = await this.#cgroup(e, me.exe);
    const labels = await this.#labels(e, cg, me.exe);
    const derived = this.#derived(labels);
    let flags: number | undefined;
    let mode = 0;
    const a = (i: number) => Number(BigInt.asIntN(32, e.args[i]!));
    switch (e.syscall) {
      case "open":
        flags = a(1);
        mode = a(2);
        break;
      case "openat":
        flags = a(2);
        mode = a(3);
        break;
      case "openat2":
        flags = e.howFlags;
        break;
      case "chmod":
      case "fchmod":
        mode = a(1);
        break;
      case "fchmodat":
        mode = a(2);
        break;
    }
    const input: AuditInput = {
      time: this.#time(e.ts),
      syscall: e.syscall,
      ret: e.ret,
      path,
      path2,
      mode,
      argv: e.argv,
      exe_name: e.exeName,
      addr: e.addr ?? null,
      ptrace: e.syscall === "ptrace" ? { request: a(0), pid: a(1) } : null,
      mount: e.syscall === "mount" ? { flags: a(3) } : null,
      proc: {
        pid: e.pid,
        tid: e.tid,
        ppid: e.ppid,
        name: e.comm,
        exe: me.exe,
        cwd,
        uid: e.uid,
        gid: e.gid,
        cmdline: (isExec ? e.argv : me.argv).join(" "),
      },
      ancestors: e.ancestors.map((x) => ({ pid: x.pid, name: x.comm, exe: this.#info(x.pid).exe })),
      container: {
        id: cg.containerId,
        labels: cg.containerId ? derived.container : {},
      },
      // As the container labels: the event's own cgroup decides (a runc init exec'd in a host
      // cgroup is attested later, from inside the container).
      pod: cg.containerId ? derived.pod : null,
      cgroup_id: String(e.cgroupId),
      labels,
      spiffe_id: this.#src.spiffeIdOf?.(labels) ?? "",
    };
    if (flags !== undefined) {
      input.flags = flags;
      input.open_flags = openFlags(flags);
    }
    if (e.syscall === "connect") {
      const known = labels.length > 0 && this.#src.egressPolicyOf;
      input.workload = { egress_policy: known ? this.#src.egressPolicyOf!(labels) ?? null : null };
    }
    return input;
  }

  /** Forgets a process (it exited). */
  forget(pid: number): void {
    this.#procs.delete(pid);
    this.#pidLabels.delete(pid);
  }
}
