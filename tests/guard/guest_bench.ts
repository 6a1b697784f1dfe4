/**
 * Runs INSIDE the qemu guest, started by lsm_overhead.ts: open()/close() and execve() rates
 * without the guard, with the guard loaded (caller unconfined) and with the caller confined
 * (in a keyed cgroup, rules that do not deny what it does). Rounds interleave the setups so
 * drift on a shared machine hits them alike; the best of each is kept.
 *
 * Usage (guest): deno run -A tests/guard/guest_bench.ts DIR SECONDS ROUNDS
 */
import { GuardPrograms } from "../../driver/bpf/guard.ts";
import { RuntimeGuard } from "../../agent/guard/runtime_guard.ts";
import { parsePolicyFile } from "../../agent/policy/parse_policy.ts";
import { sh } from "./guest_lib.ts";

const [DIR, SECONDS = "2", ROUNDS = "2"] = Deno.args as [string, string?, string?];
await sh(
  "mount -t securityfs none /sys/kernel/security 2>/dev/null; " +
    "mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup; " +
    // tmpfs, not the 9p share: the guard's cost, not the host round trip, is measured.
    "mkdir -p /sys/fs/cgroup/bench.service; echo x > /dev/shm/target; " +
    `cp ${DIR}/hotpath ${DIR}/true /dev/shm/`,
);

async function rate(kind: "open" | "exec", confined: boolean): Promise<number> {
  const target = kind === "open" ? "/dev/shm/target" : "/dev/shm/true";
  const cmd = `${confined ? "echo $$ > /sys/fs/cgroup/bench.service/cgroup.procs; " : ""}` +
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

const best: Record<string, number> = {};
const keep = (k: string, v: number) => best[k] = Math.max(best[k] ?? 0, v);
for (let round = 0; round < Number(ROUNDS); round++) {
  for (const kind of ["open", "exec"] as const) {
    keep(`${kind} no programs`, await rate(kind, false));
  }
  const kernel = GuardPrograms.load({ agentTgid: Deno.pid });
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
  const helper = new Deno.Command("bash", {
    args: ["-c", "echo $$ > /sys/fs/cgroup/bench.service/cgroup.procs; exec sleep 600"],
  }).spawn();
  for (let i = 0; i < 200; i++) {
    const cg = await Deno.readTextFile(`/proc/${helper.pid}/cgroup`).catch(() => "");
    if (cg.includes("bench.service")) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await guard.update(parsePolicyFile("bench.yaml", POLICY, { trustDomain: "bench" }).policies);
  if (guard.status().confined.cgroups !== 1) throw new Error("the bench cgroup is not keyed");
  for (const kind of ["open", "exec"] as const) {
    keep(`${kind} programs, unconfined`, await rate(kind, false));
    keep(`${kind} programs, confined`, await rate(kind, true));
  }
  const st = guard.status();
  if (st.events.denied !== 0) throw new Error(`the bench was denied: ${JSON.stringify(st)}`);
  helper.kill();
  await helper.status;
  guard.close();
}
await Deno.writeTextFile(`${DIR}/bench.json`, JSON.stringify(best));
