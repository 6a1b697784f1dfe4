/** The runtime guard's CLI surface, as users run it: validate, explain runtime, events, status. */
import assert from "node:assert/strict";
import { runCli } from "../cli/_run.ts";
import { formatRuntimeGuard } from "../../agent/cli/status_runtime.ts";

async function layout(policy: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/policies`);
  await Deno.mkdir(`${dir}/services`);
  await Deno.writeTextFile(`${dir}/policies/web.yaml`, policy);
  return dir;
}
const paths = (dir: string) => [
  "--policies-path",
  `${dir}/policies`,
  "--services-path",
  `${dir}/services`,
];

const POLICY = `- selectors: [{docker:label:app: web}]
  certificate: {workloadID: web}
  runtime:
    profiles: [restricted]
    exec: {deny: [/bin/sh]}
- selectors: [{process:name: web}]
  certificate: {workloadID: web-proc}
  runtime: {mode: audit, syslog: deny}
`;

Deno.test("validate names file, line, item and field of a bad runtime rule", async () => {
  const dir = await layout(
    "- selectors: [{process:name: web}]\n  certificate: {workloadID: web}\n" +
      "  runtime: {exec: {deny: [sh]}, ptrace: yes}\n",
  );
  try {
    const r = await runCli(["validate", ...paths(dir)]);
    assert.equal(r.code, 1, r.stderr);
    assert.ok(
      r.stderr.includes(
        `${dir}/policies/web.yaml:3: item 0: runtime.exec.deny[0]: path "sh" must be absolute`,
      ),
      r.stderr,
    );
    assert.match(r.stderr, /runtime\.ptrace: "yes" is not a rule value; use deny or allow/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("explain runtime: the winning policy, its key, each rule's origin, canonical paths", async () => {
  const dir = await layout(POLICY);
  try {
    const r = await runCli([
      "explain",
      "runtime",
      "--label",
      "docker:label:app=web",
      "--label",
      "process:name=web",
      ...paths(dir),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Runtime policy for these labels: .*web\.yaml item 0 \(line 1\)/);
    assert.match(r.stdout, /keyed by\s+cgroup: its selectors use only container\/unit labels/);
    assert.match(r.stdout, /exec deny \/bin\/sh {2}\(policy\)/);
    assert.match(r.stdout, /syslog deny {2}\(profile restricted\)/);
    const sh = Deno.realPathSync("/bin/sh");
    assert.ok(r.stdout.includes(`    ${sh}  <- exec deny /bin/sh (policy)`), r.stdout);
    assert.match(r.stdout, /lost: .*web\.yaml#1: same specificity, later than/);

    const j = await runCli([
      "explain",
      "runtime",
      "--label",
      "process:name=web",
      "--output",
      "json",
      ...paths(dir),
    ]);
    assert.equal(j.code, 0, j.stderr);
    const x = JSON.parse(j.stdout);
    assert.equal(x.policy.item, 1);
    assert.equal(x.key.kind, "task");
    assert.equal(x.mode, "audit");

    const none = await runCli(["explain", "runtime", "--label", "process:name=db", ...paths(dir)]);
    assert.match(none.stdout, /No runtime policy applies to these labels: it runs unconfined/);
    const usage = await runCli(["explain", "runtime", ...paths(dir)]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /give --pid, or labels/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("events without a running agent says so and exits 1", async () => {
  const r = await runCli(["events", "--control-socket", "/nonexistent/agent.sock"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Cannot reach the agent at \/nonexistent\/agent\.sock/);
});

Deno.test("status lines of the runtime guard", () => {
  assert.deepEqual(formatRuntimeGuard(undefined), []);
  assert.match(
    formatRuntimeGuard({ state: "unavailable", reason: "no bpf in lsm=" })[0]!,
    /runtime guard\s+UNAVAILABLE: no bpf in lsm=/,
  );
  const lines = formatRuntimeGuard({
    state: "running",
    programs: ["a", "b"],
    rulesets: [
      { id: 1, ref: "w#0", mode: "enforce", target: "cgroup", paths: 2 },
      { id: 2, ref: "w#1", mode: "audit", target: "task", paths: 0 },
    ],
    confined: { cgroups: 1, tasks: 3 },
    events: {
      denied: 5,
      audited: 2,
      lost: 0,
      bound: 1,
      cacheHits: 0,
      subscribers: 1,
      streamDropped: 0,
    },
    canary: "ok (cat: Operation not permitted)",
  });
  assert.match(
    lines[0]!,
    /2 BPF LSM programs attached; 2 rule sets \(1 enforce, 1 audit\); canary ok/,
  );
  assert.match(lines[0]!, /detached when the agent stops/);
  assert.match(lines[1]!, /1 cgroup, 3 processes keyed/);
  assert.match(lines[2]!, /denied 5, audited 2, bound at exec 1, lost 0; 1 stream client$/);
});

Deno.test("explain runtime --pid attests the live process as the agent would", async () => {
  const dir = await layout(
    "- selectors: [{process:name: sleep}]\n  certificate: {workloadID: napper}\n" +
      "  runtime: {profiles: [baseline]}\n",
  );
  const sleeper = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    const r = await runCli(["explain", "runtime", "--pid", String(sleeper.pid), ...paths(dir)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`Runtime policy for pid ${sleeper.pid}: .*web\\.yaml item 0`),
    );
    assert.match(r.stdout, /matched\s+selector map 0: process:name=sleep/);
    assert.match(r.stdout, /keyed by\s+task: process labels/);
    const gone = await runCli(["explain", "runtime", "--pid", "999999999", ...paths(dir)]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /Cannot explain pid 999999999: no such process/);
  } finally {
    sleeper.kill();
    await sleeper.status;
    await Deno.remove(dir, { recursive: true });
  }
});
