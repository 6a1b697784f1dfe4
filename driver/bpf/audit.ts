/**
 * The syscall audit's kernel side: `audit.bpf.c` (embedded) loaded and attached through libbpf
 * on the raw syscall tracepoints, its prefilter written from the loaded rules, its ring buffer
 * read into decoded events. Tracepoint programs, so it runs where BPF LSM is refused.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { BpfMap, BpfObject } from "./bpf_object.ts";
import { bpf } from "./libbpf.ts";
import { RingBuffer, type RingSample } from "./guard_ffi.ts";
import {
  decodeAuditEvent,
  EVENT,
  PATH_LEN,
  prefixKey,
  type RawAuditEvent,
  syscallCfg,
  SYSCALLS,
} from "./audit_layout.ts";
import { AUDIT_OBJECT_BASE64 } from "./audit_object.ts";

/** What the rules can match: everything else stays in the kernel. */
export interface AuditFilter {
  /** Syscall names (keys of SYSCALLS). */
  syscalls: string[];
  /**
   * Syscalls whose path must start with one of `prefixes` (relative paths pass). A syscall not
   * listed here is sent whatever its path.
   */
  pathFiltered: string[];
  prefixes: string[];
}

/** Counters of the `stats` map, summed over CPUs. */
export interface AuditStats {
  /** Traced syscalls entered. */
  seen: number;
  /** Kept in the kernel by the path prefilter. */
  filtered: number;
  sent: number;
  /** Events the ring buffer had no room for. */
  lost: number;
  /** Syscalls not captured because the pending table was full. */
  pendingFull: number;
}

const u32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
};

/** The loaded audit programs. */
export class AuditPrograms {
  #obj: BpfObject;
  #maps: { config: BpfMap; syscalls: BpfMap; prefixes: BpfMap; stats: BpfMap; events: number };
  #filter: AuditFilter = { syscalls: [], pathFiltered: [], prefixes: [] };

  private constructor(obj: BpfObject) {
    this.#obj = obj;
    this.#maps = {
      config: obj.map("config", 4, 8),
      syscalls: obj.map("syscalls", 4, 8),
      prefixes: obj.map("prefixes", 4 + PATH_LEN, 1),
      stats: obj.map("stats", 4, 8),
      events: obj.map("events", 0, 0).fd,
    };
  }

  /** Loads, verifies and attaches the programs; the agent's own tgid is never traced. */
  static load(agentTgid: number): AuditPrograms {
    const obj = BpfObject.load(
      Buffer.from(AUDIT_OBJECT_BASE64, "base64"),
      "syscall audit BPF object",
      "CAP_BPF and CAP_PERFMON",
    );
    let a: AuditPrograms | undefined;
    try {
      a = new AuditPrograms(obj);
      const conf = new Uint8Array(8);
      new DataView(conf.buffer).setUint32(0, agentTgid, true);
      a.#maps.config.update(u32(0), conf);
      obj.attachAll();
    } catch (e) {
      obj.close();
      throw e;
    }
    return a;
  }

  /** Names of the attached programs. */
  get attached(): string[] {
    return this.#obj.attached;
  }

  /** The filter in force. */
  get filter(): AuditFilter {
    return this.#filter;
  }

  /**
   * Replaces the prefilter. Validates everything before touching the kernel, so a bad filter
   * leaves the previous one in force.
   */
  setFilter(f: AuditFilter): void {
    for (const s of [...f.syscalls, ...f.pathFiltered]) {
      if (!SYSCALLS.has(s)) {
        throw new RangeError(
          `Cannot filter on syscall "${s}": not one the audit captures (${
            [...SYSCALLS.keys()].join(", ")
          })`,
        );
      }
    }
    const keys = f.prefixes.map(prefixKey);
    const filtered = new Set(f.pathFiltered);
    const wanted = new Set(f.syscalls);
    // Prefixes first, so no syscall is filtered against a half-written trie.
    for (const k of this.#maps.prefixes.keys()) this.#maps.prefixes.delete(k);
    for (const k of keys) this.#maps.prefixes.update(k, new Uint8Array([1]));
    for (const [name, spec] of SYSCALLS) {
      this.#maps.syscalls.update(
        u32(spec.nr),
        wanted.has(name) ? syscallCfg(spec, filtered.has(name)) : new Uint8Array(8),
      );
    }
    this.#filter = {
      syscalls: [...wanted].sort(),
      pathFiltered: [...filtered].sort(),
      prefixes: [...f.prefixes].sort(),
    };
  }

  /** The counters, summed over CPUs. */
  stats(): AuditStats {
    const cpus = Math.max(1, bpf().libbpf_num_possible_cpus());
    const perCpu = new BpfMap("stats", this.#maps.stats.fd, 4, 8 * cpus);
    const read = (i: number) => {
      const v = perCpu.lookup(u32(i));
      if (!v) return 0;
      const dv = new DataView(v.buffer);
      let n = 0n;
      for (let c = 0; c < cpus; c++) n += dv.getBigUint64(c * 8, true);
      return Number(n);
    };
    return { seen: read(0), filtered: read(1), sent: read(2), lost: read(3), pendingFull: read(4) };
  }

  /** A ring-buffer reader delivering decoded events; call `consume()` on a timer. */
  openEvents(onEvent: (e: RawAuditEvent) => void): RingBuffer {
    return new RingBuffer(this.#maps.events, (s: RingSample) => {
      if (s.length >= EVENT.size) onEvent(decodeAuditEvent(s));
    });
  }

  /** Detaches everything and frees the object. Idempotent. */
  close(): void {
    this.#obj.close();
  }
}
