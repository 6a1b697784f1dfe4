/**
 * The runtime guard's cost on the hot paths, measured in the Debian 6.1 guest (the only place
 * its LSM programs load): open()+close() and fork+execve per second, without the programs, with
 * them loaded for an unconfined caller, and for a confined one. One guest boot.
 *
 * Usage: deno run -A tests/guard/lsm_overhead.ts [SECONDS=2] [ROUNDS=2]
 * (needs root, gcc, and what tests/guard/_guest.ts needs; prints a table with ratios)
 */
import { guestUnavailable, HARNESS } from "./_guest.ts";

const why = guestUnavailable();
if (why) {
  console.error(`Cannot run the guard benchmark: ${why}`);
  Deno.exit(1);
}
const [seconds = "2", rounds = "2"] = Deno.args;
const ROOT = new URL("../../", import.meta.url).pathname;
const dir = await Deno.makeTempDir({ prefix: "camblet-guard-bench-" });
try {
  const cc = await new Deno.Command("gcc", {
    args: ["-O2", "-o", `${dir}/hotpath`, `${ROOT}tests/guard/c/hotpath.c`],
  }).output();
  if (!cc.success) throw new Error(new TextDecoder().decode(cc.stderr));
  // A static no-op to exec: no shared libraries to map, so exec itself is measured.
  await Deno.writeTextFile(`${dir}/true.c`, "int main(void) { return 0; }\n");
  const st = await new Deno.Command("gcc", {
    args: ["-O2", "-static", "-o", `${dir}/true`, `${dir}/true.c`],
  }).output();
  if (!st.success) throw new Error(new TextDecoder().decode(st.stderr));
  const o = await new Deno.Command(HARNESS, {
    args: [
      dir,
      Deno.execPath(),
      "run",
      "-A",
      `${ROOT}tests/guard/guest_bench.ts`,
      dir,
      seconds,
      rounds,
    ],
    env: { QH_TIMEOUT: "900" },
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!o.success) throw new Error(`the guest benchmark failed (exit ${o.code})`);
  const r = JSON.parse(await Deno.readTextFile(`${dir}/bench.json`)) as Record<string, number>;
  const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  console.log(
    `guest: Debian 6.1 under qemu TCG, ${seconds}s x ${rounds} rounds (best of); host load ${load}`,
  );
  for (const kind of ["open", "exec"]) {
    const base = r[`${kind} no programs`]!;
    console.log(`${kind === "open" ? "open()+close()" : "fork+execve"} per second:`);
    for (const setup of ["no programs", "programs, unconfined", "programs, confined"]) {
      const v = r[`${kind} ${setup}`]!;
      console.log(`  ${setup.padEnd(22)} ${v.toFixed(0).padStart(9)}  ${(v / base).toFixed(3)}x`);
    }
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
