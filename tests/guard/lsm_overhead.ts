/**
 * The runtime guard's cost on the hot paths, measured in the Debian 6.1 guest (the only place
 * its LSM programs load): open()+close() and fork+execve per second, without the programs, with
 * them loaded for an unconfined caller, and for a confined one. One guest boot, under the test
 * lock (tests/_exclusive.ts): the TCG guest takes both cores.
 *
 * Usage: deno run -A tests/guard/lsm_overhead.ts [--icount|--wall] [SECONDS] [ROUNDS]
 * [BASELINE_REV] (needs root, gcc, and what tests/guard/_guest.ts needs; prints a table with
 * ratios). With BASELINE_REV (a git revision), guard.bpf.c as of that revision is built too and
 * measured in the same rounds, alternating with the current object.
 *
 * --icount (the default): the guest runs on one vCPU under qemu -icount shift=0, so its clock
 * counts instructions (1 ns each) and a "second" is 10^9 guest instructions: the shared host's
 * load no longer moves the rates (two runs agree within 0.001x on open()), but caches, TLB and
 * branch prediction are not modelled (every instruction costs the same). SECONDS defaults to
 * 0.5, ROUNDS to 4 (4-6 min a run on a busy host). --wall: the guest's clock is host time (two
 * vCPUs, multi-threaded TCG), as before; SECONDS 2, ROUNDS 2.
 */
import { exclusive } from "../_exclusive.ts";
import { guestUnavailable, HARNESS } from "./_guest.ts";
import { icountEnv } from "./_icount.ts";

const why = guestUnavailable();
if (why) {
  console.error(`Cannot run the guard benchmark: ${why}`);
  Deno.exit(1);
}
const flags = Deno.args.filter((a) => a.startsWith("--"));
for (const f of flags) {
  if (f !== "--icount" && f !== "--wall") {
    console.error(`lsm_overhead: unknown flag ${f} (expected --icount or --wall)`);
    Deno.exit(2);
  }
}
const icount = !flags.includes("--wall");
const positional = Deno.args.filter((a) => !a.startsWith("--"));
const [seconds = icount ? "0.5" : "2", rounds = icount ? "4" : "2", rev] = positional;
const ROOT = new URL("../../", import.meta.url).pathname;

async function run(cmd: string, args: string[], cwd = ROOT): Promise<string> {
  const o = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  if (!o.success) throw new Error(`${cmd} ${args.join(" ")}: ${dec.decode(o.stderr)}`);
  return dec.decode(o.stdout);
}

const dir = await Deno.makeTempDir({ prefix: "camblet-guard-bench-" });
try {
  await run("gcc", ["-O2", "-o", `${dir}/hotpath`, `${ROOT}tests/guard/c/hotpath.c`]);
  // A static no-op to exec: no shared libraries to map, so exec itself is measured.
  await Deno.writeTextFile(`${dir}/true.c`, "int main(void) { return 0; }\n");
  await run("gcc", ["-O2", "-static", "-o", `${dir}/true`, `${dir}/true.c`]);
  const extra: string[] = [];
  if (rev) {
    // The same flags as driver/bpf/build.ts, on that revision's source.
    await Deno.writeTextFile(
      `${dir}/guard.bpf.c`,
      await run("git", ["show", `${rev}:driver/bpf/guard.bpf.c`]),
    );
    const triple = (await run("clang", ["-print-multiarch"])).trim() || "x86_64-linux-gnu";
    await run("clang", [
      "-O2",
      "-g",
      "-target",
      "bpfel",
      `-I/usr/include/${triple}`,
      "-c",
      "guard.bpf.c",
      "-o",
      "baseline.o",
    ], dir);
    await run("llvm-strip", ["-g", "baseline.o"], dir);
    extra.push(`${dir}/baseline.o`);
  }
  const load = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  const loadBefore = load();
  const started = performance.now();
  const o = await exclusive(() =>
    new Deno.Command(HARNESS, {
      args: [
        dir,
        Deno.execPath(),
        "run",
        "-A",
        `${ROOT}tests/guard/guest_bench.ts`,
        dir,
        seconds,
        rounds,
        ...extra,
      ],
      env: { QH_TIMEOUT: "900", ...(icount ? icountEnv() : {}) },
      stdout: "inherit",
      stderr: "inherit",
    }).output()
  );
  if (!o.success) throw new Error(`the guest benchmark failed (exit ${o.code})`);
  const r = JSON.parse(await Deno.readTextFile(`${dir}/bench.json`)) as Record<string, number[]>;
  const best = (k: string) => Math.max(...r[k]!);
  const median = (k: string) => {
    const s = [...r[k]!].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  console.log(
    `guest: Debian 6.1 under qemu TCG, ` +
      (icount
        ? "1 vCPU, -icount shift=0 (rates per 10^9 guest instructions, ns = instructions)"
        : "2 vCPUs, wall clock") +
      `; ${seconds}s x ${rounds} rounds; host load before ${loadBefore}, after ${load()}; ` +
      `took ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
  const setups = rev
    ? [
      "no programs",
      "no programs, cgroup",
      "baseline, unconfined",
      "current, unconfined",
      "baseline, unconfined, cgroup",
      "current, unconfined, cgroup",
      "baseline, confined",
      "current, confined",
    ]
    : [
      "no programs",
      "no programs, cgroup",
      "programs, unconfined",
      "programs, unconfined, cgroup",
      "programs, confined",
    ];
  const cell = (v: number, base: number) =>
    `${v.toFixed(0).padStart(9)} ${(v / base).toFixed(3).padStart(6)}x`;
  for (const kind of ["open", "exec"]) {
    const k = (setup: string) => `${kind} ${setup}`;
    console.log(
      `${(kind === "open" ? "open()+close()" : "fork+execve") + " per second:"}`.padEnd(32) +
        "best".padStart(17) + "median".padStart(17),
    );
    for (const setup of setups) {
      console.log(
        `  ${setup.padEnd(30)}${cell(best(k(setup)), best(k("no programs")))}` +
          cell(median(k(setup)), median(k("no programs"))),
      );
    }
  }
  console.log(
    `guard_open's own time per open (BPF stats, ns${
      icount ? " = instructions" : ""
    }; best / median):`,
  );
  for (const setup of setups.slice(2)) {
    const k = `open ${setup} ns/call`;
    if (!r[k]) continue;
    const low = Math.min(...r[k]);
    console.log(
      `  ${setup.padEnd(30)}${low.toFixed(0).padStart(9)} ${median(k).toFixed(0).padStart(9)}`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
