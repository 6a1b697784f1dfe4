/**
 * The syscall audit's cost to a workload it does not trace (issue 14's "≤ 3 % slowdown"), one run,
 * side by side, rounds alternating (root, gcc, clang, the opa peer for the default rules):
 *
 *   deno run -A tests/audit/syscall_cost_bench.ts [--native] [--guest] [--rounds=5]
 *     [--guest-rounds=2] [--before=REV,…] [--scale=1] [--guest-scale=0.05]
 *
 * Setups: no programs; empty programs on raw_tracepoint/sys_enter, and on sys_enter + sys_exit
 * (the floor any syscall-tracepoint capture pays: the kernel's traced-syscall path for every
 * task), and fentry+fexit on openat alone (per-syscall attachment; no row where the kernel refuses
 * fentry, as this host's does); the audit programs with the default rules' prefilter for a process in a host cgroup and
 * for one in a fresh cgroup (counted as a container); with --before, audit.bpf.c as of each REV (its
 * embedded object) for the host process. Workloads (tests/audit/c/syscall_cost.c and real
 * commands): getppid, 1-byte read+write, openat+close of a file no rule takes and of /etc/shadow
 * (every open sent), `git status` in a 300-file repository, `gcc -c`. Natively (this kernel) and
 * in the Debian 6.1 guest under qemu TCG with -icount (tests/guard/_icount.ts: the guest's clock
 * counts instructions, so ops/s there is ops per 10⁹ guest instructions; it does not model
 * caches, TLB, branch prediction or memory latency, nor the cost of the instructions themselves:
 * a helper call costs what its instructions count, and TCG may count a `rep movs` copy per
 * iteration, which would make the kernel's memcpy of a 2.6 KB event dearer than on hardware).
 * Prints best and median of the rounds, per CPU second of the workload (wall beside; in the
 * guest, wall of the real commands includes waits for the host's 9p share: read the CPU columns).
 *
 * @module
 */
import { exclusive } from "../_exclusive.ts";
import { guestUnavailable, HARNESS } from "../guard/_guest.ts";
import { icountEnv } from "../guard/_icount.ts";
import { buildRules, captureMissing } from "./_rules.ts";
import { loadRulesBytes } from "../../agent/audit/rules_file.ts";
import { type CostInputs, measure, prepareWork, report, type Samples } from "./_syscall_cost.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const args = new Map(
  Deno.args.map((a) => a.replace(/^--/, "").split("=", 2) as [string, string | undefined]),
);
const native = args.has("native") || !args.has("guest");
const guest = args.has("guest") || !args.has("native");
const rounds = Number(args.get("rounds") ?? 5);
const before = (args.get("before") ?? "").split(",").filter((r) => r);

async function run(cmd: string, argv: string[], cwd = ROOT): Promise<string> {
  const o = await new Deno.Command(cmd, { args: argv, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  if (!o.success) throw new Error(`Cannot run ${cmd} ${argv.join(" ")}: ${dec.decode(o.stderr)}`);
  return dec.decode(o.stdout);
}

function cgroup2(): string {
  for (const l of Deno.readTextFileSync("/proc/self/mountinfo").split("\n")) {
    const [pre, post] = l.split(" - ");
    if (post?.startsWith("cgroup2 ")) return pre!.split(" ")[4]!;
  }
  throw new Error("Cannot run the syscall cost bench: no cgroup v2 hierarchy mounted");
}

const why = captureMissing();
if (why) {
  console.error(`Cannot run the syscall cost bench: ${why}`);
  Deno.exit(1);
}
const dir = await Deno.makeTempDir({ prefix: "camblet-syscall-cost-" });
try {
  await run("gcc", ["-O2", "-o", `${dir}/probe`, `${ROOT}tests/audit/c/syscall_cost.c`]);
  const triple = (await run("clang", ["-print-multiarch"])).trim() || "x86_64-linux-gnu";
  for (
    const [out, def] of [
      ["empty_enter.o", []],
      ["empty_both.o", ["-DEXIT"]],
      ["empty_fentry.o", ["-DFENTRY"]],
    ] as const
  ) {
    await run("clang", [
      "-O2",
      "-target",
      "bpfel",
      `-I/usr/include/${triple}`,
      ...def,
      "-c",
      `${ROOT}tests/audit/c/empty.bpf.c`,
      "-o",
      `${dir}/${out}`,
    ]);
  }
  const beforeB64: [string, string][] = [];
  for (const rev of before) {
    const src = await run("git", ["show", `${rev}:driver/bpf/audit_object.ts`]);
    beforeB64.push([
      rev,
      [...src.matchAll(/^ {2}"([A-Za-z0-9+/=]+)",$/gm)].map((m) => m[1]).join(""),
    ]);
  }
  const filter = (await loadRulesBytes(await buildRules(), "policies/rego/audit")).filter;
  const scale = Number(args.get("scale") ?? 1);
  const n = (s: number) => ({
    getppid: Math.round(2_000_000 * s),
    rw: Math.round(1_000_000 * s),
    open: Math.round(300_000 * s),
    git: Math.max(1, Math.round(20 * s)),
    cc: Math.max(1, Math.round(8 * s)),
  });
  const base = {
    probe: `${dir}/probe`,
    emptyEnter: `${dir}/empty_enter.o`,
    emptyBoth: `${dir}/empty_both.o`,
    emptyFentry: `${dir}/empty_fentry.o`,
    filter,
    before: beforeB64,
    rounds,
  };
  const load = () => Deno.loadavg().map((v) => v.toFixed(2)).join(" ");
  if (native) {
    const work = `${dir}/work`;
    await prepareWork(work);
    const l0 = load();
    const samples = await exclusive(() =>
      measure(
        {
          ...base,
          work,
          cgroup2: cgroup2(),
          paths: { keptOut: "/etc/hostname", sent: "/etc/shadow" },
          n: n(scale),
          log: (s) => console.error(`native: ${s}`),
        } satisfies CostInputs,
      )
    );
    console.log(
      `\nnative: kernel ${Deno.osRelease()}, ${rounds} rounds alternating, ` +
        `load average ${l0} → ${load()} (2 cores, shared)`,
    );
    console.log(report(samples, before));
  }
  if (guest) {
    const no = guestUnavailable();
    if (no) throw new Error(`Cannot run the guest half: ${no}`);
    // Instruction counts barely vary (best and median within 0.1 %): few rounds, short loops, so
    // the guest (one vCPU, both host cores under TCG) holds the machine lock for minutes only.
    const gs = Number(args.get("guest-scale") ?? 0.05);
    const gr = Number(args.get("guest-rounds") ?? 2);
    await Deno.writeTextFile(
      `${dir}/inputs.json`,
      JSON.stringify({ ...base, rounds: gr, n: n(gs) }),
    );
    const l0 = load();
    const t = performance.now();
    const o = await exclusive(() =>
      new Deno.Command(HARNESS, {
        args: [dir, Deno.execPath(), "run", "-A", `${ROOT}tests/audit/syscall_cost_guest.ts`, dir],
        env: { ...icountEnv(), QH_TIMEOUT: "470" },
        stdout: "inherit",
        stderr: "inherit",
      }).output()
    );
    if (!o.success) throw new Error(`The guest half failed (exit ${o.code})`);
    const samples = JSON.parse(await Deno.readTextFile(`${dir}/bench.json`)) as Samples;
    console.log(
      `\nguest: Debian 6.1 under qemu TCG -icount (ops per 10⁹ guest instructions), ${gr} ` +
        `rounds alternating, ${((performance.now() - t) / 1000).toFixed(0)} s wall; host load ` +
        `${l0} → ${load()}`,
    );
    console.log(report(samples, before));
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
