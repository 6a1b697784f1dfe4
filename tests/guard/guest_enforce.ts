/**
 * Runs INSIDE the qemu guest (Debian 6.1 with bpf in lsm=), started by enforce_test.ts: loads
 * the real runtime guard with real attestation, runs real commands confined and unconfined, and
 * writes every check as JSON to `$DIR/results.json` for the host side to assert. Kept to one
 * boot: the guest is 15–35× slower than the host.
 *
 * Usage (guest): deno run -A tests/guard/guest_enforce.ts DIR
 */
import { createAttestation, taskContextFromProc } from "../../agent/attestation/mod.ts";
import { parseConfigObject } from "../../agent/config/load.ts";
import { type GuardEventRecord, openRuntimeGuard } from "../../agent/guard/mod.ts";
import { parsePolicyFile } from "../../agent/policy/parse_policy.ts";
import { type Check, Runner, sh } from "./guest_lib.ts";

const DIR = Deno.args[0]!;
// Path rules past the kernel's one-lookup table (an LPM key holds 252 bytes of path): a file
// 254 bytes long denied by its exact path, files 253 and >300 bytes long below a denied prefix.
const VAULT = `${DIR}/vault`;
const pad = (head: string, total: number) => head + "x".repeat(total - head.length);
const LONG_EXACT = pad(`${DIR}/e/`, 254);
const LONG_253 = pad(`${VAULT}/m/`, 253);
const LONG_DEEP = `${VAULT}/${"a".repeat(100)}/${"b".repeat(100)}/${"c".repeat(100)}`;
// Open verdict cache (guard.bpf.c guard_open): a tmpfs with a read-denied directory.
const GC = "/tmp/gc";
const DENY = `${GC}/deny`;
const checks: Check[] = [];
const check = (name: string, ok: boolean, detail: unknown = "") =>
  checks.push({ name, ok, detail: typeof detail === "string" ? detail : JSON.stringify(detail) });

await sh(
  "mount -t securityfs none /sys/kernel/security 2>/dev/null; " +
    "mountpoint -q /sys/fs/cgroup || mount -t cgroup2 none /sys/fs/cgroup; " +
    "mkdir -p /sys/fs/cgroup/guardtest.service /tmp/mnt; " +
    `echo secret > ${DIR}/secret; cp /usr/bin/bash /tmp/confineme; cp /usr/bin/bash /tmp/auditme; ` +
    "cp /usr/bin/bash /tmp/boundbin; " +
    // The open verdict cache's checks: a tmpfs (no name revalidation, so opens are cached).
    `mkdir -p ${GC}; mount -t tmpfs none ${GC}; mkdir -p ${DENY} ${GC}/bind; ` +
    `echo l > ${GC}/later; echo a > ${DENY}/aud; ` +
    `mkdir -p ${DIR}/e ${VAULT}/m ${LONG_DEEP.slice(0, LONG_DEEP.lastIndexOf("/"))}; ` +
    `for f in ${LONG_EXACT} ${LONG_253} ${LONG_DEEP} ${VAULT}/notes ${VAULT}x; do echo v > $f; done`,
);

const policyYaml = (variant: "strict" | "relaxed") => `
- selectors: [{systemd:unit: guardtest.service}]
  certificate: {workloadID: "guarded/[systemd:unit]"}
  runtime:
    profiles: [baseline]
    exec: {deny: [/bin/sh]}
    files:
      denyRead: [${DIR}/secret, ${VAULT}/, ${LONG_EXACT}, ${DENY}/${
  variant === "strict" ? `, ${GC}/later` : ""
}]
      denyWrite: [${VAULT}/notes]
    rawSockets: deny
    setuidRoot: deny
- selectors: [{process:name: confineme}]
  certificate: {workloadID: confineme}
  runtime:
    ${variant === "strict" ? "exec: {deny: [/bin/sh]}\n    syslog: deny" : "syslog: allow"}
- selectors: [{process:name: auditme}]
  certificate: {workloadID: "audited/[process:uid]"}
  runtime: {mode: audit, syslog: deny, exec: {deny: [/bin/sh]}, files: {denyRead: [${DENY}/]}}
- selectors: [{process:binary:path: /tmp/boundbin}]
  certificate: {workloadID: bound}
  runtime: {exec: {deny: [/bin/sh]}}
`;

function policies(variant: "strict" | "relaxed") {
  const r = parsePolicyFile("guard.yaml", policyYaml(variant), { trustDomain: "test.local" });
  if (r.problems.length) throw new Error(JSON.stringify(r.problems));
  return r.policies;
}

const parsed = parseConfigObject({ agent: { trustDomain: "test.local" } });
if (!parsed.success) throw new Error("config");
const attestation = await createAttestation(parsed.data);
const labelsOf = async (pid: number) => {
  const task = taskContextFromProc(pid);
  if (!task) throw new Error(`pid ${pid} gone`);
  return await attestation.augmentLabels(task, AbortSignal.timeout(5000));
};

const events: GuardEventRecord[] = [];
let guard;
try {
  guard = await openRuntimeGuard(policies("strict"), {
    trustDomain: "test.local",
    labelsOf,
    sweepIntervalMs: 0,
    pollMs: 50,
  });
} catch (e) {
  check("guard starts", false, String(e));
  await Deno.writeTextFile(`${DIR}/results.json`, JSON.stringify(checks));
  Deno.exit(0);
}
check(
  "guard starts and its canary is denied",
  guard.status().canary.startsWith("ok"),
  guard.status(),
);
const reader = guard.subscribe({}).pipeThrough(new TextDecoderStream()).getReader();
void (async () => {
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      events.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  }
})();

// The same five commands, in and out of the workload.
const COMMANDS: [string, string][] = [
  ["exec /bin/sh", "/bin/sh -c true"],
  ["open the secret", `cat ${DIR}/secret >/dev/null`],
  ["ptrace another process", "sleep 1 & strace -o /dev/null -p $!"],
  ["ptrace via PTRACE_TRACEME", "strace -o /dev/null -f true"],
  ["dmesg", "dmesg >/dev/null"],
  ["mount", "mount -t tmpfs none /tmp/mnt && umount /tmp/mnt"],
  ["a raw socket", `${DIR}/probes raw`],
  ["bpf()", `${DIR}/probes bpf`],
  ["setuid to root", `${DIR}/probes setuid`],
  // Outside it really loads (and unloads) the module; inside the load is refused.
  ["load a kernel module", "modprobe dummy && rmmod dummy"],
];

const inCgroup = await Runner.start("/usr/bin/bash");
await inCgroup.run("echo $$ > /sys/fs/cgroup/guardtest.service/cgroup.procs");
const outside = await Runner.start("/usr/bin/bash");
await guard.sweep();
check("the workload's cgroup is keyed", guard.status().confined.cgroups === 1, guard.status());

for (const [name, cmd] of COMMANDS) {
  const r = await inCgroup.run(cmd);
  // strace -p reports the failed attach on stderr and exits non-zero; the others EPERM too.
  check(
    `in the workload: ${name} is denied`,
    r.code !== 0 && /not permitted|denied/i.test(r.err),
    r,
  );
  const o = await outside.run(cmd);
  check(`outside: ${name} succeeds`, o.code === 0, o);
}
// Path tables: the longest match carries its shorter matches' rules; long paths are walked.
const PATH_CASES: [string, string, boolean][] = [
  ["a file with its own write rule below a read-denied prefix: read", `cat ${VAULT}/notes`, false],
  ["the same file: write", `echo x >> ${VAULT}/notes`, false],
  ["a sibling sharing the prefix's bytes but not its directory: read", `cat ${VAULT}x`, true],
  ["a 254-byte path denied exactly (past the LPM key): read", `cat ${LONG_EXACT}`, false],
  ["a 253-byte path below a denied prefix: read", `cat ${LONG_253}`, false],
  [`a ${LONG_DEEP.length}-byte path below a denied prefix: read`, `cat ${LONG_DEEP}`, false],
];
for (const [name, cmd, allowed] of PATH_CASES) {
  const r = await inCgroup.run(`${cmd} >/dev/null`);
  check(
    `in the workload: ${name} is ${allowed ? "allowed" : "denied"}`,
    allowed ? r.code === 0 : r.code !== 0 && /not permitted/i.test(r.err),
    r,
  );
}
const o = await outside.run(PATH_CASES.map(([, cmd]) => `${cmd} >/dev/null`).join(" && "));
check("outside: every one of those paths opens", o.code === 0, o);
guard.drain();
await new Promise((r) => setTimeout(r, 200));
const execEv = events.find((e) =>
  e.hook === "exec" && e.outcome === "denied" && e.path === "/usr/bin/dash" &&
  e.labels.includes("systemd:unit=guardtest.service")
);
check(
  "the exec denial is an event with labels and the SPIFFE ID",
  execEv?.spiffeId === "spiffe://test.local/guarded/guardtest.service" &&
    execEv.rule === "exec.deny" && execEv.policy?.file === "guard.yaml",
  execEv ?? events.slice(0, 5),
);
for (const hook of ["open", "ptrace", "syslog", "mount", "socket_create", "bpf", "setuid"]) {
  check(
    `a ${hook} denial was reported`,
    events.some((e) => e.hook === hook && e.outcome === "denied" && e.pid > 0 && e.program !== ""),
    events.filter((e) => e.hook === hook),
  );
}

check(
  "the module load denial was reported",
  events.some((e) =>
    e.hook.startsWith("kernel_") && e.rule === "modules" && e.outcome === "denied"
  ),
  events.filter((e) => e.hook.startsWith("kernel_")),
);

// The open verdict cache: a file's path can change under a cached verdict (rename, link, bind
// mount); each must decide as d_path alone did.
const hits = () => guard.status().events.cacheHits;
const cat = (f: string, times = 1) => Array(times).fill(`cat ${f} >/dev/null`).join(" && ");
const denied = (r: { code: number; err: string }) => r.code !== 0 && /not permitted/i.test(r.err);
await outside.run(
  `echo a > ${GC}/a; echo b > ${DENY}/b; echo h > ${GC}/h; echo k > ${DENY}/k; echo m > ${DENY}/m`,
);
const hits0 = hits();
let c = await inCgroup.run(cat(`${GC}/a`, 3));
check("cache: an allowed file opens three times", c.code === 0, c);
check("cache: the repeated opens were judged from the cache", hits() >= hits0 + 2, hits() - hits0);
await outside.run(`mv ${GC}/a ${DENY}/a`);
c = await inCgroup.run(cat(`${DENY}/a`));
check("cache: the cached allowed file renamed into a denied prefix is denied", denied(c), c);
c = await inCgroup.run(cat(`${DENY}/b`));
let c2 = await inCgroup.run(cat(`${DENY}/b`));
check("cache: a denied file is denied twice (cached deny)", denied(c) && denied(c2), [c, c2]);
await outside.run(`mv ${DENY}/b ${GC}/b`);
c = await inCgroup.run(cat(`${GC}/b`));
check("cache: a denied file renamed out of the prefix is allowed", c.code === 0, c);
c = await inCgroup.run(cat(`${GC}/h`, 3));
await outside.run(`ln ${GC}/h ${DENY}/h`);
c2 = await inCgroup.run(cat(`${DENY}/h`));
let c3 = await inCgroup.run(cat(`${GC}/h`));
await outside.run(`rm ${GC}/h`);
const c4 = await inCgroup.run(cat(`${DENY}/h`));
check(
  "cache: a cached allowed file hard-linked into the prefix: the new name denied, the old allowed, " +
    "and once the old name is gone the one left still denied",
  c.code === 0 && denied(c2) && c3.code === 0 && denied(c4),
  [c, c2, c3, c4],
);
await outside.run(`ln ${DENY}/k ${GC}/k`);
c = await inCgroup.run(cat(`${DENY}/k`, 2));
c2 = await inCgroup.run(cat(`${GC}/k`, 2));
c3 = await inCgroup.run(cat(`${DENY}/k`));
check(
  "cache: a denied file with a second link (nlink 2): still denied by its name; the alias opens " +
    "as before (its own path decides)",
  denied(c) && c2.code === 0 && denied(c3),
  [c, c2, c3],
);
await outside.run(`mount --bind ${DENY} ${GC}/bind`);
c = await inCgroup.run(cat(`${DENY}/m`, 2));
c2 = await inCgroup.run(cat(`${GC}/bind/m`, 2));
c3 = await inCgroup.run(cat(`${DENY}/m`));
await outside.run(`umount ${GC}/bind`);
check(
  "cache: a bind mount of a denied directory: denied by its own path before and after, the bind " +
    "path judged by its own path as without the cache (d_path names the bind mount)",
  denied(c) && c2.code === 0 && denied(c3),
  [c, c2, c3],
);
guard.drain();
await new Promise((r) => setTimeout(r, 200));
check(
  "cache: every denied open is an event, cached or not",
  events.filter((e) => e.hook === "open" && e.outcome === "denied" && e.path === `${DENY}/b`)
        .length === 2 &&
    events.filter((e) => e.hook === "open" && e.path === `${DENY}/k`).length === 2, // && stops at the first
  events.filter((e) => e.hook === "open").map((e) => e.path),
);

// Task-storage keyed process, children inherit, reload changes enforcement.
const confined = await Runner.start("/tmp/confineme");
await guard.sweep();
let r = await confined.run("bash -c 'bash -c \"/bin/sh -c true\"'");
check(
  "process labels: a grandchild of the selected process is denied exec of /bin/sh",
  r.code !== 0 && /not permitted/i.test(r.err),
  r,
);
r = await confined.run("dmesg >/dev/null");
check("process labels: dmesg denied", r.code !== 0, r);
await guard.update(policies("relaxed"));
c = await inCgroup.run(cat(`${GC}/later`, 3));
check("cache: after a reload a no longer denied file opens (cached)", c.code === 0, c);
r = await confined.run("dmesg >/dev/null");
check("after a reload the same running process may read the kernel log", r.code === 0, r);
r = await confined.run("/bin/sh -c true");
check("after a reload the same running process may exec /bin/sh", r.code === 0, r);
await guard.update(policies("strict"));
c = await inCgroup.run(cat(`${GC}/later`));
check("cache: a reload that denies the cached file denies it at once", denied(c), c);
r = await confined.run("/bin/sh -c true");
check("reloading the strict rules denies it again, still without a restart", r.code !== 0, r);

// Audit mode: allowed and reported.
const audited = await Runner.start("/tmp/auditme");
await guard.sweep();
r = await audited.run("dmesg >/dev/null && /bin/sh -c true");
check("audit mode lets dmesg and /bin/sh through", r.code === 0, r);
r = await audited.run(cat(`${DENY}/aud`, 3));
check("audit mode: a would-deny open passes, also when cached", r.code === 0, r);
guard.drain();
await new Promise((r) => setTimeout(r, 200));
const aud = events.filter((e) => e.outcome === "audited");
check(
  "audit mode reports both as audited events with the SPIFFE ID",
  aud.some((e) => e.hook === "syslog") &&
    aud.some((e) => e.hook === "exec" && e.spiffeId === "spiffe://test.local/audited/0"),
  aud,
);
check(
  "audit mode: each of the three would-deny opens is reported (cached ones too)",
  aud.filter((e) => e.hook === "open" && e.path === `${DENY}/aud`).length === 3,
  aud.filter((e) => e.hook === "open"),
);

// Exec binding: confined from its first instruction, no sweep.
const bound = new Deno.Command("/tmp/boundbin", {
  args: ["-c", "/bin/sh -c true"],
  stderr: "piped",
});
const b = await bound.output();
check(
  "a process selected by process:binary:path is confined at exec (no agent round trip)",
  !b.success && /not permitted/i.test(new TextDecoder().decode(b.stderr)),
  new TextDecoder().decode(b.stderr),
);

const st = guard.status();
check(
  "status counts denials and no lost events",
  st.events.denied > 5 && st.events.lost === 0 && st.programs.length === 20,
  st,
);
const metrics = guard.metricsText();
check(
  "metrics per policy, rule and outcome",
  /camblet_runtime_guard_events_total\{outcome="denied",policy="guard.yaml#0",rule="exec.deny"\} [1-9]/
    .test(metrics),
  metrics,
);

// A process keyed through task storage whose policy is then removed falls to its cgroup's rules
// (the kernel skips an inactive task rule set); it must not escape a keyed cgroup it is in. The
// last policy is removed (rule sets are keyed by position: removing an earlier one would give its
// id to the next).
const moved = await Runner.start("/tmp/boundbin");
await guard.sweep();
r = await moved.run(`cat ${DIR}/secret >/dev/null`);
check("a task-keyed process may read what only the cgroup's rules deny", r.code === 0, r);
await moved.run("echo $$ > /sys/fs/cgroup/guardtest.service/cgroup.procs");
const withoutLast = parsePolicyFile(
  "guard.yaml",
  policyYaml("strict").replace(
    /- selectors: \[\{process:binary:path: \/tmp\/boundbin\}\][^]*$/,
    "",
  ),
  { trustDomain: "test.local" },
);
check("the policy set without the last one parses", withoutLast.problems.length === 0, withoutLast);
await guard.update(withoutLast.policies);
r = await moved.run(`cat ${DIR}/secret >/dev/null`);
check(
  "its policy removed, that process in the keyed cgroup is denied by the cgroup's rules",
  denied(r),
  r,
);

for (const x of [inCgroup, outside, confined, audited, moved]) await x.close();
guard.close();
await attestation.dispose?.();
await Deno.writeTextFile(`${DIR}/results.json`, JSON.stringify(checks, null, 1));
Deno.exit(0);
