/**
 * Runs INSIDE the qemu guest, started by docker_test.ts: a real Docker daemon (the host's
 * binaries, storage on tmpfs, no network), a busybox image imported from a tar (no registry),
 * and the runtime guard with the docker attestor: the container labelled app=web cannot spawn a
 * shell, one without the label can, and the event carries the container's labels and SPIFFE ID.
 *
 * Usage (guest): deno run -A tests/guard/guest_docker.ts DIR
 */
import { createAttestation, taskContextFromProc } from "../../agent/attestation/mod.ts";
import { parseConfigObject } from "../../agent/config/load.ts";
import { type GuardEventRecord, openRuntimeGuard } from "../../agent/guard/mod.ts";
import { parsePolicyFile } from "../../agent/policy/parse_policy.ts";
import { type Check, sh } from "./guest_lib.ts";

const DIR = Deno.args[0]!;
const checks: Check[] = [];
const check = (name: string, ok: boolean, detail: unknown = "") =>
  checks.push({ name, ok, detail: typeof detail === "string" ? detail : JSON.stringify(detail) });
const done = async () => {
  await Deno.writeTextFile(`${DIR}/results.json`, JSON.stringify(checks, null, 1));
  Deno.exit(0);
};

const docker = async (...args: string[]) => {
  const o = await new Deno.Command("docker", { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout).trim(), err: dec.decode(o.stderr).trim() };
};

await sh(
  "mount -t securityfs none /sys/kernel/security 2>/dev/null; " +
    "mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup; " +
    "for d in /var/lib/docker /var/lib/containerd /run/docker /run/containerd; do " +
    "mkdir -p $d; mount -t tmpfs none $d; done",
);
const dockerd = new Deno.Command("bash", {
  args: [
    "-c",
    "exec dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=overlay2 " +
    "-H unix:///var/run/docker.sock >/tmp/dockerd.log 2>&1",
  ],
}).spawn();
let up = false;
for (let i = 0; i < 240 && !up; i++) {
  up = (await docker("info")).code === 0;
  if (!up) await new Promise((r) => setTimeout(r, 500));
}
check("the Docker daemon starts", up, await Deno.readTextFile("/tmp/dockerd.log").catch(() => ""));
if (!up) await done();
// /bin/sh is a copy of busybox, not a link: the container's exec path is /bin/sh itself.
await sh(
  "mkdir -p /tmp/rootfs/bin && cp /usr/bin/busybox /tmp/rootfs/bin/sleep && " +
    "cp /usr/bin/busybox /tmp/rootfs/bin/sh && " +
    "tar -C /tmp/rootfs -c . | docker import - guard/test:1 >/dev/null",
);
const run = (...labels: string[]) =>
  docker("run", "-d", ...labels, "--network", "none", "guard/test:1", "/bin/sleep", "600");
const web = await run("--label", "app=web");
const other = await run();
check("two containers run", web.code === 0 && other.code === 0, [web, other]);

const parsed = parseConfigObject({
  agent: {
    trustDomain: "test.local",
    metadataCollectors: { docker: { enabled: true } },
    attestation: { budget: "10s" }, // the guest is 15–35× slower than a host
  },
});
if (!parsed.success) throw new Error("config");
const attestation = await createAttestation(parsed.data);
const policies = parsePolicyFile(
  "docker.yaml",
  "- selectors: [{docker:label:app: web}]\n  certificate: {workloadID: web-container}\n" +
    "  runtime: {profiles: [baseline], exec: {deny: [/bin/sh]}}\n",
  { trustDomain: "test.local" },
).policies;
const events: GuardEventRecord[] = [];
try {
  const guard = await openRuntimeGuard(policies, {
    trustDomain: "test.local",
    labelsOf: async (pid) => {
      const task = taskContextFromProc(pid);
      if (!task) throw new Error("gone");
      return await attestation.augmentLabels(task, AbortSignal.timeout(10_000));
    },
    sweepIntervalMs: 0,
    pollMs: 50,
  });
  guard.hub.publish = ((orig) => (e: GuardEventRecord) => {
    events.push(e);
    orig(e);
  })(guard.hub.publish.bind(guard.hub));
  check(
    "the labelled container's cgroup is keyed",
    guard.status().confined.cgroups === 1,
    guard.status(),
  );
  const denied = await docker("exec", web.out, "/bin/sh", "-c", "true");
  check(
    "the container selected by its label app=web cannot spawn a shell",
    denied.code !== 0 && /permission denied|not permitted/i.test(denied.err),
    denied,
  );
  const allowed = await docker("exec", other.out, "/bin/sh", "-c", "true");
  check("a container without the label can", allowed.code === 0, allowed);
  guard.drain();
  const ev = events.find((e) => e.hook === "exec" && e.outcome === "denied");
  check(
    "the denial carries the container's labels and SPIFFE ID",
    ev?.spiffeId === "spiffe://test.local/web-container" && ev.path === "/bin/sh" &&
      ev.labels.includes("docker:label:app=web"),
    ev ?? events,
  );
  guard.close();
} catch (e) {
  check("the guard ran", false, String(e));
}
await docker("rm", "-f", web.out, other.out);
dockerd.kill();
await dockerd.status;
await attestation.dispose?.();
await done();
