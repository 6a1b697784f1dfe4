/**
 * The measuring half of the audit's untraced-workload benchmark (tests/audit/syscall_cost_bench.ts),
 * shared by the native run and the Debian 6.1 guest (tests/audit/syscall_cost_guest.ts): rounds
 * alternating the setups, each loaded, then every workload run once, then unloaded.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { BpfObject } from "../../driver/bpf/bpf_object.ts";
import { AuditPrograms, type AuditStats } from "../../driver/bpf/audit.ts";
import type { AuditFilter } from "../../driver/bpf/audit_filter.ts";
import { hostCgroupIds } from "../../agent/audit/prefilter.ts";

/** What a run needs, all files (the guest sees the host's through the shared directory). */
export interface CostInputs {
  /** The compiled tests/audit/c/syscall_cost.c. */
  probe: string;
  /** tests/audit/c/empty.bpf.c built without and with -DEXIT. */
  emptyEnter: string;
  emptyBoth: string;
  /** The same built with -DFENTRY (fentry+fexit on openat; refused where fentry is). */
  emptyFentry: string;
  /** The default rules' prefilter (JSON of an AuditFilter). */
  filter: AuditFilter;
  /** Older audit objects (revision → base64 of its ELF) to measure beside the current one. */
  before: [string, string][];
  /** A scratch directory (git repo and C file for the realistic workloads). */
  work: string;
  /** cgroup v2 mount, for the "container process" setup. */
  cgroup2: string;
  /** Files the open loops open: one no rule takes, one a rule takes (every open sent). */
  paths: { keptOut: string; sent: string };
  rounds: number;
  /** Iterations of each workload. */
  n: { getppid: number; rw: number; open: number; git: number; cc: number };
  log?: (s: string) => void;
}

/**
 * Samples: `workload|setup` → ops per CPU second of each round (the workload's own CPU time, so
 * what others run on its core does not count), `wall|workload|setup` → ops per wall second,
 * `stats|setup|workload|counter` → the programs' counters (host-wide) during the run.
 */
export type Samples = Record<string, number[]>;

/** Setup names, in the order they run each round. */
export function setupNames(before: string[]): string[] {
  return [
    "no programs",
    "empty sys_enter",
    "empty sys_enter+exit",
    "empty fentry+fexit openat",
    ...before.map((rev) => `${rev}, host process`),
    "audit, host process",
    "audit, container process",
  ];
}

/** Workload names and what one op is. */
export const WORKLOADS: [string, string][] = [
  ["getppid", "getppid(2)"],
  ["rw", "read+write of 1 byte"],
  ["open kept out", "openat+close of a file no rule takes"],
  ["open sent", "openat+close of /etc/shadow (a rule takes it: every one sent)"],
  ["git status", "git status in a 300-file repository"],
  ["cc", "gcc -c of a small C file"],
];

async function sh(cmd: string, cwd = "/"): Promise<string> {
  const o = await new Deno.Command("sh", {
    args: ["-c", cmd],
    cwd,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  if (!o.success) throw new Error(`Cannot run \`${cmd}\`: ${dec.decode(o.stderr)}`);
  return dec.decode(o.stdout);
}

/** Writes the realistic workloads' inputs: a committed 300-file repository and a C file. */
export async function prepareWork(work: string): Promise<void> {
  const repo = `${work}/repo`;
  for (let d = 0; d < 10; d++) {
    await Deno.mkdir(`${repo}/d${d}`, { recursive: true });
    for (let f = 0; f < 30; f++) await Deno.writeTextFile(`${repo}/d${d}/f${f}.txt`, `${d} ${f}\n`);
  }
  await sh(
    "git init -q . && git -c user.email=b@x -c user.name=b add -A && " +
      "git -c user.email=b@x -c user.name=b commit -qm x && git status >/dev/null",
    repo,
  );
  await Deno.writeTextFile(
    `${work}/small.c`,
    '#include <stdio.h>\n#include <string.h>\nint main(int c, char **v) { printf("%zu\\n", strlen(v[0])); return c; }\n',
  );
}

/** Loaded programs as the bench sees them. */
interface Loaded {
  stats?(): AuditStats;
  consume?(): void;
  close(): void;
}

function loadEmpty(path: string): Loaded {
  const obj = BpfObject.load(Deno.readFileSync(path), `empty programs ${path}`, "CAP_BPF");
  obj.attachAll();
  return { close: () => obj.close() };
}

function loadAudit(f: AuditFilter, image?: Uint8Array): Loaded {
  const p = AuditPrograms.load(Deno.pid, image);
  try {
    p.setHostCgroups(hostCgroupIds());
    p.setFilter(f);
  } catch (e) {
    p.close();
    throw e;
  }
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

/** Runs every setup × workload `rounds` times, alternating; ops/s per round. */
export async function measure(inp: CostInputs): Promise<Samples> {
  const log = inp.log ?? (() => {});
  const samples: Samples = {};
  const keep = (k: string, v: number) => (samples[k] ??= []).push(v);
  const container = `${inp.cgroup2}/camblet-syscall-cost-${Deno.pid}`;
  await Deno.mkdir(container, { recursive: true });
  const setups: [string, () => Loaded | undefined, boolean][] = [
    ["no programs", () => undefined, false],
    ["empty sys_enter", () => loadEmpty(inp.emptyEnter), false],
    ["empty sys_enter+exit", () => loadEmpty(inp.emptyBoth), false],
    ["empty fentry+fexit openat", () => loadEmpty(inp.emptyFentry), false],
    ...inp.before.map(([rev, b64]) =>
      [`${rev}, host process`, () => loadAudit(inp.filter, Buffer.from(b64, "base64")), false] as [
        string,
        () => Loaded,
        boolean,
      ]
    ),
    ["audit, host process", () => loadAudit(inp.filter), false],
    ["audit, container process", () => loadAudit(inp.filter), true],
  ];
  // One op each; a workload runs in a shell that first moves itself into the container cgroup.
  const runs: [string, string, number][] = [
    ["getppid", `exec ${inp.probe} getppid ${inp.n.getppid}`, inp.n.getppid],
    ["rw", `exec ${inp.probe} rw ${inp.n.rw}`, inp.n.rw],
    ["open kept out", `exec ${inp.probe} open ${inp.n.open} ${inp.paths.keptOut}`, inp.n.open],
    ["open sent", `exec ${inp.probe} open ${inp.n.open} ${inp.paths.sent}`, inp.n.open],
    [
      "git status",
      `exec ${inp.probe} run ${inp.n.git} 'cd ${inp.work}/repo && ` +
      `for i in $(seq ${inp.n.git}); do git status >/dev/null; done'`,
      inp.n.git,
    ],
    [
      "cc",
      `exec ${inp.probe} run ${inp.n.cc} 'cd ${inp.work} && ` +
      `for i in $(seq ${inp.n.cc}); do gcc -O1 -c small.c -o small.o; done'`,
      inp.n.cc,
    ],
  ];
  const refused = new Set<string>();
  // A warm-up of each workload first (page cache, the guest's 9p share), not counted.
  for (const [, cmd] of runs) await sh(cmd);
  try {
    for (let r = 0; r < inp.rounds; r++) {
      for (const [setup, load, inContainer] of setups) {
        if (refused.has(setup)) continue;
        let p: Loaded | undefined;
        try {
          p = load();
        } catch (e) {
          if (r > 0) throw e;
          refused.add(setup); // e.g. fentry where the kernel refuses it: no row
          log(`${setup}: cannot load here (${(e as Error).message.split("\n")[0]})`);
          continue;
        }
        const timer = p?.consume && setInterval(() => p.consume!(), 10);
        try {
          for (const [name, cmd, n] of runs) {
            const s0 = p?.stats?.();
            const enter = inContainer ? `echo $$ > ${container}/cgroup.procs && ` : "";
            // The probe's own figures: wall and CPU seconds (its own, or the script's children's).
            const [, wall, cpu] = (await sh(enter + cmd)).trim().split(" ").map(Number);
            keep(`${name}|${setup}`, n / cpu!);
            keep(`wall|${name}|${setup}`, n / wall!);
            p?.consume?.();
            const s1 = p?.stats?.();
            if (s0 && s1) {
              for (const k of ["seen", "filtered", "sent", "lost"] as const) {
                keep(`stats|${setup}|${name}|${k}`, s1[k] - s0[k]);
              }
            }
          }
        } finally {
          clearInterval(timer);
          p?.close();
        }
      }
      log(`round ${r + 1}/${inp.rounds} done`);
    }
  } finally {
    await Deno.remove(container).catch(() => {});
  }
  return samples;
}

/** The table: per workload, each setup's best and median ops/s and their ratio to no programs. */
export function report(samples: Samples, before: string[]): string {
  const best = (xs: number[]) => Math.max(...xs);
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const lines: string[] = [];
  const fmt = (v: number) => (v >= 1000 ? Math.round(v).toString() : v.toFixed(2)).padStart(10);
  for (const [w, what] of WORKLOADS) {
    lines.push(
      `${w} (${what}), ops per CPU s:`.padEnd(44) +
        "best      ×    median      ×  wall med ×".padStart(42),
    );
    const base = samples[`${w}|no programs`]!;
    for (const s of setupNames(before)) {
      const xs = samples[`${w}|${s}`];
      if (!xs) continue;
      const wx = samples[`wall|${w}|${s}`]!;
      const wb = samples[`wall|${w}|no programs`]!;
      let line = `  ${s.padEnd(26)}${fmt(best(xs))} ${(best(xs) / best(base)).toFixed(3)}` +
        `${fmt(median(xs))} ${(median(xs) / median(base)).toFixed(3)}` +
        `${(median(wx) / median(wb)).toFixed(3).padStart(12)}`;
      const seen = samples[`stats|${s}|${w}|seen`];
      if (seen) {
        const m = (k: string) => median(samples[`stats|${s}|${w}|${k}`]!);
        line += `   seen ${m("seen")} kept out ${m("filtered")} sent ${m("sent")} lost ${
          m("lost")
        }`;
      }
      lines.push(line);
    }
  }
  return lines.join("\n");
}
