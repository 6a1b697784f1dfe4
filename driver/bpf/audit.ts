/**
 * The syscall audit's kernel side: `audit.bpf.c` (embedded) loaded and attached through libbpf
 * on the syscall tracepoints (tp_btf), its prefilter written from the loaded rules, its ring buffer
 * read into decoded events. Tracepoint programs, so it runs where BPF LSM is refused.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { BpfMap, BpfObject } from "./bpf_object.ts";
import { bpf } from "./libbpf.ts";
import { RingBuffer, type RingSample } from "./guard_ffi.ts";
import { decodeAuditEvent, EVENT, type RawAuditEvent } from "./audit_layout.ts";
import { AUDIT_OBJECT_BASE64 } from "./audit_object.ts";
import type { AuditFilter, WorkloadCgroup } from "./audit_filter.ts";
import {
  type AuditFilterDescription,
  AuditFilterMaps,
  PREFILTER_MAPS,
  type PrefilterCounters,
  type PrefilterMaps,
} from "./audit_filter_maps.ts";

export type { AuditFilter, FilterGroup, WorkloadCgroup } from "./audit_filter.ts";
export type { AuditFilterDescription } from "./audit_filter_maps.ts";

/** Counters of the `stats` map, summed over CPUs. */
export type AuditStats = PrefilterCounters;

const u32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
};

/** `gate`, or an older build's 8-byte `config` (its first 8 bytes; benchmarks load one). */
function gateMap(obj: BpfObject): BpfMap {
  const [name, ks, vs] = PREFILTER_MAPS.config;
  try {
    return obj.map(name, ks, vs);
  } catch {
    return obj.map("config", 4, 8);
  }
}

/** A map older builds lack (benchmarks load them), or undefined. */
function optionalMap(obj: BpfObject, name: string, ks: number, vs: number): BpfMap | undefined {
  try {
    return obj.map(name, ks, vs);
  } catch {
    return undefined;
  }
}

/** The loaded audit programs. */
export class AuditPrograms {
  #obj: BpfObject;
  #maps: { config: BpfMap; stats: BpfMap; events: number };
  #prefilter: AuditFilterMaps;

  private constructor(obj: BpfObject) {
    this.#obj = obj;
    const m = {} as PrefilterMaps;
    for (const [k, [name, ks, vs]] of Object.entries(PREFILTER_MAPS)) {
      if (k === "config") m.config = gateMap(obj);
      else if (k === "tops") {
        const tops = optionalMap(obj, name, ks, vs);
        if (tops) m.tops = tops;
      } else m[k as keyof PrefilterMaps] = obj.map(name, ks, vs);
    }
    this.#maps = {
      config: m.config,
      stats: obj.map("stats", 4, 8),
      events: obj.map("events", 0, 0).fd,
    };
    this.#prefilter = new AuditFilterMaps(m);
  }

  /**
   * Loads, verifies and attaches the programs; the agent's own tgid is never traced. `image`:
   * another build of audit.bpf.c with the same maps (benchmarks compare an older one).
   */
  static load(agentTgid: number, image?: Uint8Array): AuditPrograms {
    const obj = BpfObject.load(
      image ?? Buffer.from(AUDIT_OBJECT_BASE64, "base64"),
      "syscall audit BPF object",
      "CAP_BPF and CAP_PERFMON",
    );
    let a: AuditPrograms | undefined;
    try {
      a = new AuditPrograms(obj);
      const conf = new Uint8Array(a.#maps.config.valueSize);
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
    return this.#prefilter.filter;
  }

  /**
   * Replaces the prefilter (driver/bpf/audit_filter.ts). Validates everything before touching
   * the kernel and switches slots at the end, so a bad filter leaves the previous one in force.
   */
  setFilter(f: AuditFilter): void {
    this.#prefilter.set(f);
  }

  /** Replaces the attested workloads (cgroup id + labels) that workload-scoped rules select. */
  setWorkloads(ws: readonly WorkloadCgroup[]): void {
    this.#prefilter.setWorkloads(ws);
  }

  /** Replaces the host (non-container) cgroup ids (agent/audit/prefilter.ts hostCgroupIds). */
  setHostCgroups(ids: Iterable<bigint>): void {
    this.#prefilter.setHostCgroups(ids);
  }

  /** The prefilter in force and its counters, for `status` (stable shape). */
  describe(): AuditFilterDescription {
    return this.#prefilter.describe(this.stats());
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
    return {
      seen: read(0),
      filtered: read(1),
      filteredPath: read(5),
      filteredCgroup: read(6),
      filteredFlags: read(7),
      sent: read(2),
      lost: read(3),
      pendingFull: read(4),
    };
  }

  /**
   * A ring-buffer reader delivering decoded events; call `consume()` on a timer. `onEvent`
   * returning `false` (not just falsy) ends that `consume()`: the rest waits in the kernel.
   */
  openEvents(onEvent: (e: RawAuditEvent) => unknown): RingBuffer {
    return new RingBuffer(this.#maps.events, (s: RingSample) => {
      return s.length >= EVENT.size ? onEvent(decodeAuditEvent(s)) : undefined;
    });
  }

  /** Detaches everything and frees the object. Idempotent. */
  close(): void {
    this.#obj.close();
  }
}
