/**
 * Runs INSIDE the Debian 6.1 qemu guest, started by tests/audit/syscall_cost_bench.ts: the same
 * setups and workloads as natively (tests/audit/_syscall_cost.ts), files on tmpfs so the 9p
 * share's round trips to the host are not measured. Writes DIR/bench.json.
 *
 * Usage (guest): deno run -A tests/audit/syscall_cost_guest.ts DIR
 */
import { measure, prepareWork } from "./_syscall_cost.ts";

const [DIR] = Deno.args as [string];
const inputs = JSON.parse(await Deno.readTextFile(`${DIR}/inputs.json`));
const sh = async (cmd: string) => {
  const o = await new Deno.Command("sh", { args: ["-c", cmd], stderr: "piped" }).output();
  if (!o.success) {
    throw new Error(`Cannot run \`${cmd}\` in the guest: ${new TextDecoder().decode(o.stderr)}`);
  }
};
// cgroup v2 for the container setup; the probe and the opened files copied up to tmpfs.
await sh(
  "mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup; " +
    "mkdir -p /tmp/work && cp " + inputs.probe + " /tmp/work/probe && " +
    "echo guest > /dev/shm/target && cp /etc/shadow /tmp/shadow && cat /tmp/shadow > /etc/shadow",
);
await prepareWork("/tmp/work");
const samples = await measure({
  ...inputs,
  probe: "/tmp/work/probe",
  work: "/tmp/work",
  cgroup2: "/sys/fs/cgroup",
  paths: { keptOut: "/dev/shm/target", sent: "/etc/shadow" },
  log: (s: string) => console.log(`guest: ${s}`),
});
await Deno.writeTextFile(`${DIR}/bench.json`, JSON.stringify(samples));
