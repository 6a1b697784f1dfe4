// The in-kernel prefilter on a busy machine, one run, side by side (root):
// `deno bench -A tests/audit/prefilter_bench.ts` (prints a table; the bench time itself is not
// the result). Setups alternate round by round: no audit programs; the previous programs
// (audit.bpf.c of commit daa44a4: one prefix set for all syscalls); the current programs with
// that previous filter (one union per syscall); the current programs with the current filter (per
// declaration: per-rule prefixes, write-only opens, container scope; host cgroups scanned), and
// with the two container rules alone (their cgroup scope at work on a host build). Each
// runs a real build (`go build` of a small program with an empty build cache, beside a
// build-script loop of short commands), an untraced `dd bs=1` (read/write are not traced), and
// traced opens the default rules cannot match (reads of /etc/hostname and /usr/lib/os-release).
// Printed (medians of the rounds): captured vs kept out (by reason) vs sent during the build and the opens, the
// workloads' times and syscalls/s, and the load average. Events are only counted, not judged,
// so the costs are the kernel side's.
import { Buffer } from "node:buffer";
import { exclusive } from "../_exclusive.ts";
import { buildRules, captureMissing } from "./_rules.ts";
import { loadRulesBytes } from "../../agent/audit/rules_file.ts";
import { hostCgroupIds } from "../../agent/audit/prefilter.ts";
import type { AuditFilter, AuditStats } from "../../driver/bpf/audit.ts";
import { filterOf } from "../../driver/bpf/audit_filter.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const ROUNDS = 3;
const DD = 2_000_000; // bytes: 2 syscalls each
const OPENS = 50_000; // per path: open + close each
const PREVIOUS = "daa44a4";

async function timed(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<number> {
  const t = performance.now();
  const o = await new Deno.Command(cmd, { args, cwd: ROOT, env, stdout: "null", stderr: "piped" })
    .output();
  if (!o.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(o.stderr)}`);
  }
  return (performance.now() - t) / 1000;
}

async function goBuild(src: string): Promise<number> {
  const cache = await Deno.makeTempDir({ prefix: "camblet-bench-gocache-" });
  try {
    return await timed("go", ["build", "-C", src, "-o", "/dev/null", "."], {
      GOCACHE: cache,
      GOFLAGS: "-p=2",
    });
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
}

const script = () =>
  timed("sh", ["-c", "for i in $(seq 150); do cat /etc/hostname; ls /usr/bin | wc -l; done"]);
const dd = () => timed("dd", ["if=/dev/zero", "of=/dev/null", "bs=1", `count=${DD}`]);
const opens = () =>
  timed("python3", [
    "-c",
    `import os\nfor p in ("/etc/hostname", "/usr/lib/os-release"):\n` +
    `  for _ in range(${OPENS}): os.close(os.open(p, os.O_RDONLY))`,
  ]);

/** Loaded programs as the bench sees them. */
interface Loaded {
  stats(): AuditStats;
  consume(): void;
  close(): void;
}

const diff = (a: AuditStats, b: AuditStats): AuditStats =>
  Object.fromEntries(
    Object.keys(a).map((k) => [k, b[k as keyof AuditStats] - a[k as keyof AuditStats]]),
  ) as unknown as AuditStats;

/** audit.bpf.c as of {@linkcode PREVIOUS}, with its own map encoding (8-byte cfg, no slots). */
async function loadPrevious(f: AuditFilter): Promise<Loaded> {
  const { BpfObject, BpfMap } = await import("../../driver/bpf/bpf_object.ts");
  const { bpf } = await import("../../driver/bpf/libbpf.ts");
  const { RingBuffer } = await import("../../driver/bpf/guard_ffi.ts");
  const { SYSCALLS, PATH_LEN } = await import("../../driver/bpf/audit_layout.ts");
  const src = new TextDecoder().decode(
    (await new Deno.Command("git", {
      args: ["show", `${PREVIOUS}:driver/bpf/audit_object.ts`],
      cwd: ROOT,
      stdout: "piped",
    }).output()).stdout,
  );
  const b64 = [...src.matchAll(/^ {2}"([A-Za-z0-9+/=]+)",$/gm)].map((m) => m[1]).join("");
  const obj = BpfObject.load(Buffer.from(b64, "base64"), "previous audit object", "CAP_BPF");
  const u32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
  const conf = new Uint8Array(8);
  new DataView(conf.buffer).setUint32(0, Deno.pid, true);
  obj.map("config", 4, 8).update(u32(0), conf);
  const prefixes = obj.map("prefixes", 4 + PATH_LEN, 1);
  for (const p of f.prefixes) {
    const k = new Uint8Array(4 + PATH_LEN);
    const bytes = new TextEncoder().encode(p);
    new DataView(k.buffer).setUint32(0, bytes.length * 8, true);
    k.set(bytes, 4);
    prefixes.update(k, new Uint8Array([1]));
  }
  const syscalls = obj.map("syscalls", 4, 8);
  for (const [name, s] of SYSCALLS) {
    const on = f.syscalls.includes(name);
    const pf = f.pathFiltered.includes(name) && s.path !== undefined;
    syscalls.update(
      u32(s.nr),
      on
        ? new Uint8Array([1, s.path ?? 7, s.path2 ?? 7, s.addr ?? 7, s.argv ?? 7, pf ? 1 : 0, 0, 0])
        : new Uint8Array(8),
    );
  }
  obj.attachAll();
  const rb = new RingBuffer(obj.map("events", 0, 0).fd, () => {});
  const cpus = Math.max(1, bpf().libbpf_num_possible_cpus());
  const stats = new BpfMap("stats", obj.map("stats", 4, 8).fd, 4, 8 * cpus);
  const read = (i: number) => {
    const v = stats.lookup(u32(i));
    let n = 0n;
    for (let c = 0; v && c < cpus; c++) n += new DataView(v.buffer).getBigUint64(c * 8, true);
    return Number(n);
  };
  return {
    stats: () => ({
      seen: read(0),
      filtered: read(1),
      filteredPath: read(1),
      filteredCgroup: 0,
      filteredFlags: 0,
      sent: read(2),
      lost: read(3),
      pendingFull: read(4),
    }),
    consume: () => rb.consume(),
    close: () => {
      rb.close();
      obj.close();
    },
  };
}

async function loadCurrent(f: AuditFilter): Promise<Loaded> {
  const { AuditPrograms } = await import("../../driver/bpf/audit.ts");
  const p = AuditPrograms.load(Deno.pid);
  p.setHostCgroups(hostCgroupIds());
  p.setFilter(f);
  const rb = p.openEvents(() => {});
  return {
    stats: () => p.stats(),
    consume: () => rb.consume(),
    close: () => {
      rb.close();
      p.close();
    },
  };
}

interface Row {
  build: number[];
  dd: number[];
  opens: number[];
  /** Kernel counters during the build and during the traced opens. */
  stats: { build: AuditStats; opens: AuditStats }[];
}

const why = captureMissing();
let ran = false;
if (!why) {
  Deno.bench({
    name: "audit prefilter: reduction and traced-workload cost (prints a table)",
    n: 1,
    warmup: 0,
  }, async () => {
    if (ran) return; // one measured run; deno bench may call again
    ran = true;
    await exclusive(async () => {
      const rules = await loadRulesBytes(await buildRules(), "policies/rego/audit");
      const current = rules.filter;
      const previous: AuditFilter = {
        syscalls: current.syscalls,
        pathFiltered: current.pathFiltered,
        prefixes: current.prefixes,
      };
      const containerRules = filterOf(current.groups!.filter((g) => g.containers));
      const setups: [string, (() => Promise<Loaded>) | undefined][] = [
        ["no programs", undefined],
        [`previous programs (${PREVIOUS})`, () => loadPrevious(previous)],
        ["current, previous filter", () => loadCurrent(previous)],
        ["current prefilter", () => loadCurrent(current)],
        // The container rules alone: the host's execs stay in the kernel by cgroup.
        ["current, container rules only", () => loadCurrent(containerRules)],
      ];
      const rows = new Map<string, Row>(
        setups.map(([n]) => [n, { build: [], dd: [], opens: [], stats: [] }]),
      );
      const src = await Deno.makeTempDir({ prefix: "camblet-bench-go-" });
      await Deno.writeTextFile(`${src}/go.mod`, "module bench\n\ngo 1.22\n");
      await Deno.writeTextFile(
        `${src}/main.go`,
        'package main\n\nimport (\n\t"fmt"\n\t"strings"\n)\n\nfunc main() { fmt.Println(strings.ToUpper("x")) }\n',
      );
      const load0 = Deno.loadavg();
      try {
        for (let r = 0; r < ROUNDS; r++) {
          for (const [name, load] of setups) {
            const row = rows.get(name)!;
            const p = await load?.();
            const timer = p && setInterval(() => p.consume(), 10);
            try {
              const s0 = p?.stats();
              const [b] = await Promise.all([goBuild(src), script()]);
              row.build.push(b);
              p?.consume();
              const s1 = p?.stats();
              row.dd.push(await dd());
              p?.consume();
              const s2 = p?.stats();
              row.opens.push(await opens());
              if (p) {
                p.consume();
                row.stats.push({ build: diff(s0!, s1!), opens: diff(s2!, p.stats()) });
              }
            } finally {
              clearInterval(timer);
              p?.close();
            }
          }
        }
      } finally {
        await Deno.remove(src, { recursive: true });
      }
      const load1 = Deno.loadavg();
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
      const base = rows.get("no programs")!;
      const f = (x: number[]) => x.map((v) => v.toFixed(2)).join(" ");
      console.log(
        `\nprefilter bench: ${ROUNDS} rounds alternating; load average ${f(load0)} → ${
          f(load1)
        } (2 cores, shared)`,
      );
      console.log(
        "setup                          go build s (×)   dd syscalls/s (×)     traced opens/s (×)",
      );
      for (const [name, row] of rows) {
        const x = (v: number, b: number) => `${(v / b).toFixed(3)}×`;
        console.log(
          `${name.padEnd(30)} ${median(row.build).toFixed(1).padStart(5)} (${
            x(median(row.build), median(base.build))
          })  ${Math.round(2 * DD / median(row.dd)).toString().padStart(9)} (${
            x(median(base.dd), median(row.dd))
          })  ${Math.round(4 * OPENS / median(row.opens)).toString().padStart(9)} (${
            x(median(base.opens), median(row.opens))
          })`,
        );
      }
      for (const phase of ["build", "opens"] as const) {
        for (const [name, row] of rows) {
          if (!row.stats.length) continue;
          const sum = (k: keyof AuditStats) => row.stats.reduce((a, s) => a + s[phase][k], 0);
          const seen = sum("seen");
          const pct = (n: number) => `${(100 * n / Math.max(1, seen)).toFixed(1)} %`;
          console.log(
            `${phase} (host-wide), ${name}: captured ${seen}, kept out ${sum("filtered")} (${
              pct(sum("filtered"))
            }: path ${sum("filteredPath")}, flags ${sum("filteredFlags")}, cgroup ${
              sum("filteredCgroup")
            }), sent ${sum("sent")} (${pct(sum("sent"))}), lost ${sum("lost")}, pending full ${
              sum("pendingFull")
            }`,
          );
        }
      }
    });
  });
} else {
  console.log(`prefilter bench skipped: ${why}`);
}
