/**
 * Runs INSIDE the qemu guest, started by lsm_overhead.ts: open()/close() and execve() rates
 * without the guard, with the guard loaded (caller unconfined: in the root cgroup, and in an
 * unkeyed cgroup at the keyed one's level, which pays the cgroup lookup) and with the caller
 * confined (in a keyed cgroup, rules that do not deny what it does). Rounds interleave the setups so
 * drift on a shared machine hits them alike; every sample is kept (the host side reports the
 * best and the median of each). With BASELINE (an older build of guard.bpf.c), every round also measures that object, loaded with the same rule set, before or after the
 * current one (alternating).
 *
 * Usage (guest): deno run -A tests/guard/guest_bench.ts DIR SECONDS ROUNDS [BASELINE.o]
 */
import { BpfObject } from "../../driver/bpf/bpf_object.ts";
import { GuardPrograms } from "../../driver/bpf/guard.ts";
import {
  configVal,
  pathKey,
  pathVal,
  rulesetVal,
  u32,
  u64,
} from "../../driver/bpf/guard_layout.ts";
import { RuntimeGuard } from "../../agent/guard/runtime_guard.ts";
import { cgroupOf, runtimePolicies } from "../../agent/guard/selection.ts";
import { parsePolicyFile } from "../../agent/policy/parse_policy.ts";
import { sh } from "./guest_lib.ts";

const [DIR, SECONDS = "2", ROUNDS = "2", BASELINE] = Deno.args as [
  string,
  string?,
  string?,
  string?,
];
await sh(
  "mount -t securityfs none /sys/kernel/security 2>/dev/null; " +
    "mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup; " +
    // tmpfs, not the 9p share: the guard's cost, not the host round trip, is measured.
    "mkdir -p /sys/fs/cgroup/bench.service /sys/fs/cgroup/other.service; " +
    "echo x > /dev/shm/target; " +
    `cp ${DIR}/hotpath ${DIR}/true /dev/shm/`,
);

/** Where a measured process runs: the root cgroup, the keyed bench cgroup or an unkeyed one. */
type Where = "root" | "bench" | "other";
const CGROUP: Record<Where, string> = { root: "", bench: "bench.service", other: "other.service" };

async function rate(kind: "open" | "exec", where: Where): Promise<number> {
  const target = kind === "open" ? "/dev/shm/target" : "/dev/shm/true";
  const cg = CGROUP[where];
  const cmd = `${cg ? `echo $$ > /sys/fs/cgroup/${cg}/cgroup.procs; ` : ""}` +
    `exec /dev/shm/hotpath ${kind} ${SECONDS} ${target}`;
  const o = await new Deno.Command("bash", { args: ["-c", cmd], stdout: "piped" }).output();
  if (!o.success) throw new Error(`hotpath ${kind} failed`);
  return Number(new TextDecoder().decode(o.stdout).trim());
}

const POLICY = `- selectors: [{systemd:unit: bench.service}]
  certificate: {workloadID: bench}
  runtime:
    profiles: [baseline]
    exec: {deny: [/bin/sh, /usr/bin/bash-not-used]}
    files: {denyRead: [/etc/shadow, ${DIR}/secret/], denyWrite: [/etc/]}
`;
const policies = parsePolicyFile("bench.yaml", POLICY, { trustDomain: "bench" }).policies;

const samples: Record<string, number[]> = {};
const keep = (k: string, v: number) => (samples[k] ??= []).push(v);

/** run_time_ns and run_cnt of the loaded program `name` (kernel.bpf_stats_enabled). */
async function progStats(name: string): Promise<{ ns: number; cnt: number }> {
  const o = await new Deno.Command("bpftool", { args: ["-j", "prog", "show"], stdout: "piped" })
    .output();
  const progs = JSON.parse(new TextDecoder().decode(o.stdout)) as {
    name?: string;
    run_time_ns?: number;
    run_cnt?: number;
  }[];
  const p = progs.find((p) => p.name === name);
  return { ns: p?.run_time_ns ?? 0, cnt: p?.run_cnt ?? 0 };
}

/** The setups measured with programs loaded: label suffix and where the process runs. */
const LOADED: [string, Where][] = [
  ["unconfined", "root"],
  ["unconfined, cgroup", "other"],
  ["confined", "bench"],
];

async function measure(label: string): Promise<void> {
  for (const kind of ["open", "exec"] as const) {
    for (const [name, where] of LOADED) keep(`${kind} ${label}${name}`, await rate(kind, where));
  }
  // The program's own time per open, from the kernel's BPF stats (on only for this run: they
  // cost two clock reads per call). Less noisy than rates on a shared host.
  await Deno.writeTextFile("/proc/sys/kernel/bpf_stats_enabled", "1");
  try {
    for (const [name, where] of LOADED) {
      const before = await progStats("guard_open");
      await rate("open", where);
      const after = await progStats("guard_open");
      const per = (after.ns - before.ns) / Math.max(1, after.cnt - before.cnt);
      keep(`open ${label}${name} ns/call`, per);
    }
  } finally {
    await Deno.writeTextFile("/proc/sys/kernel/bpf_stats_enabled", "0");
  }
}

/** The current object (or `image`, one with the same maps) through the agent's own code path. */
async function current(label: string, image?: Uint8Array): Promise<void> {
  const kernel = GuardPrograms.load({ agentTgid: Deno.pid, ...(image ? { image } : {}) });
  const guard = await RuntimeGuard.start({
    kernel,
    trustDomain: "bench",
    // The keyed cgroup is found through a helper in it; no attestors are needed here.
    labelsOf: (pid) => {
      const cg = Deno.readTextFileSync(`/proc/${pid}/cgroup`);
      return Promise.resolve(cg.includes("bench.service") ? ["systemd:unit=bench.service"] : []);
    },
    sweepIntervalMs: 0,
    canary: false,
  });
  try {
    await guard.update(policies);
    if (guard.status().confined.cgroups !== 1) throw new Error("the bench cgroup is not keyed");
    await measure(label);
    const st = guard.status();
    console.log(`${label}opens judged from the verdict cache: ${st.events.cacheHits}`);
    if (st.events.denied !== 0) throw new Error(`the bench was denied: ${JSON.stringify(st)}`);
  } finally {
    guard.close();
  }
}

/**
 * The baseline object: one with the `path_lpm` table through the agent's code like the current
 * one (what it does not know of `config` it ignores); an older one with its maps written
 * directly (the same rule set, hashed paths).
 */
async function baseline(image: Uint8Array, label: string): Promise<void> {
  if (new TextDecoder().decode(image).includes("path_lpm")) return await current(label, image);
  const obj = BpfObject.load(image, "baseline guard object", "CAP_BPF and CAP_SYS_ADMIN");
  try {
    obj.attachAll();
    const [p] = runtimePolicies(policies);
    const cg = cgroupOf(helper.pid)!;
    if (!p || !cg) throw new Error("no bench policy or cgroup");
    const map = (name: string, k: number, v: number) => obj.map(name, k, v);
    for (const e of p.kernel.paths) {
      map("paths", 16, 8).update(pathKey(1, e.path), pathVal(e.flags));
    }
    // Its R_PATHS (bit 9) means "has path entries".
    map("rulesets", 4, 8).update(u32(1), rulesetVal(p.kernel.flags | (1 << 9) | 1, 0));
    map("cgroup_rules", 8, 4).update(u64(cg.id), u32(1));
    map("config", 4, 16).update(u32(0), configVal(Deno.pid, 0, 1 << cg.level));
    await measure(label);
  } finally {
    obj.close();
  }
}

const helper = new Deno.Command("bash", {
  args: ["-c", "echo $$ > /sys/fs/cgroup/bench.service/cgroup.procs; exec sleep 600"],
}).spawn();
for (let i = 0; i < 200; i++) {
  const cg = await Deno.readTextFile(`/proc/${helper.pid}/cgroup`).catch(() => "");
  if (cg.includes("bench.service")) break;
  await new Promise((r) => setTimeout(r, 50));
}
const old = BASELINE ? await Deno.readFile(BASELINE) : undefined;
try {
  for (let round = 0; round < Number(ROUNDS); round++) {
    for (const kind of ["open", "exec"] as const) {
      keep(`${kind} no programs`, await rate(kind, "root"));
      // The confined runs are in the bench cgroup: its own cost (memcg charging of every
      // struct file) is not the guard's.
      keep(`${kind} no programs, cgroup`, await rate(kind, "bench"));
    }
    const order = round % 2 ? ["current", "baseline"] : ["baseline", "current"];
    for (const which of order) {
      if (which === "current") await current(old ? "current, " : "programs, ");
      else if (old) await baseline(old, "baseline, ");
    }
  }
} finally {
  helper.kill();
  await helper.status;
}
await Deno.writeTextFile(`${DIR}/bench.json`, JSON.stringify(samples));
