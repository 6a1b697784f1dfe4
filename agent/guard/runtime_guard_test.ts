import assert from "node:assert/strict";
import { skip } from "../../tests/_skip.ts";
import { GuardCapabilityError, type GuardStats } from "../../driver/bpf/guard.ts";
import {
  CFG_OPEN_CACHE,
  type GuardEvent,
  type PathEntry,
  R,
} from "../../driver/bpf/guard_layout.ts";
import { parsePolicyFile } from "../policy/parse_policy.ts";
import { type GuardKernel, RuntimeGuard } from "./runtime_guard.ts";

/** The kernel side as maps in memory; it enforces nothing. */
class FakeKernel implements GuardKernel {
  readonly attached = ["guard_exec", "guard_open"];
  config = { flags: 0, cgroupLevels: 0 };
  rulesets = new Map<number, number>();
  paths = new Map<string, { ruleset: number; path: string; flags: number; bind: number }>();
  cgroups = new Map<bigint, number>();
  tasks = new Map<number, number>();
  emit: (e: GuardEvent) => void = () => {};
  closed = false;
  setConfig(c: { flags: number; cgroupLevels: number }) {
    this.config = c;
  }
  setRuleset(id: number, flags: number) {
    this.rulesets.set(id, (flags | R.ACTIVE) >>> 0);
  }
  clearRuleset(id: number) {
    this.rulesets.set(id, 0);
  }
  setPaths(ruleset: number, entries: readonly PathEntry[]) {
    for (const { path, flags, bind = 0 } of entries) {
      this.paths.set(`${ruleset}\0${path}`, { ruleset, path, flags, bind });
    }
  }
  prunePaths(keep: ReadonlyMap<number, readonly string[]>) {
    for (const [k, p] of this.paths) {
      if (keep.get(p.ruleset)?.includes(p.path) === false) this.paths.delete(k);
    }
  }
  setCgroup(id: bigint, ruleset: number) {
    if (ruleset) this.cgroups.set(id, ruleset);
    else this.cgroups.delete(id);
  }
  setTask(pid: number, ruleset: number) {
    if (ruleset) this.tasks.set(pid, ruleset);
    else this.tasks.delete(pid);
    return true;
  }
  taskRuleset(pid: number) {
    return this.tasks.get(pid) ?? 0;
  }
  stats(): GuardStats {
    return { denied: 0, audited: 0, lost: 3, bound: 0, cacheHits: 0 };
  }
  openEvents(on: (e: GuardEvent) => void) {
    this.emit = on;
    return { consume: () => 0, close: () => {} };
  }
  pin() {}
  close() {
    this.closed = true;
  }
}

const WEB = (exec: string) =>
  `- selectors: [{process:name: web}]
  certificate: {workloadID: "web/[process:uid]"}
  runtime: {exec: {deny: [${exec}]}, syslog: deny}
`;
const TOOL = `- selectors: [{process:name: tool}]
  certificate: {workloadID: tool}
  runtime: {mode: audit, mount: deny}
`;
const OTHER = `- selectors: [{process:name: other}]
  certificate: {workloadID: other}
  runtime: {ptrace: deny}
`;
const parsed = (yaml: string) =>
  parsePolicyFile("p.yaml", yaml, { trustDomain: "acme.corp" }).policies;
const policies = (exec: string) => parsed(WEB(exec) + TOOL);

const LABELS: Record<number, string[]> = {
  101: ["process:name=web", "process:uid=33"],
  102: ["process:name=tool"],
  103: ["process:name=other"],
};

async function started(k: FakeKernel, pids = [101, 102, 103]) {
  return await RuntimeGuard.start({
    kernel: k,
    trustDomain: "acme.corp",
    labelsOf: (pid) =>
      LABELS[pid] ? Promise.resolve(LABELS[pid]) : Promise.reject(new Error("gone")),
    listPids: () => pids,
    canary: false,
    sweepIntervalMs: 0,
    pollMs: 10_000,
  });
}

Deno.test("update fills rule sets and paths; a reload rewrites them in place", async () => {
  const k = new FakeKernel();
  const g = await started(k);
  try {
    await g.update(policies("/nonexistent/a"));
    // The open verdict cache's lock-free read is only sound with x86-64's ordering.
    assert.equal(
      k.config.flags & CFG_OPEN_CACHE,
      Deno.build.arch === "x86_64" ? CFG_OPEN_CACHE : 0,
    );
    assert.equal(k.rulesets.get(1), (R.ACTIVE | R.EXEC_PATHS | R.SYSLOG) >>> 0);
    assert.equal(k.rulesets.get(2), (R.ACTIVE | R.MOUNT | R.AUDIT) >>> 0);
    assert.deepEqual([...k.paths.values()].map((p) => [p.ruleset, p.path]), [[
      1,
      "/nonexistent/a",
    ]]);
    assert.deepEqual([...k.tasks], [[101, 1], [102, 2]], "selected processes keyed; 103 not");
    await g.update(policies("/nonexistent/b"));
    assert.deepEqual(
      [...k.paths.values()].map((p) => [p.ruleset, p.path]),
      [[1, "/nonexistent/b"]],
      "the same rule set id, its stale path gone",
    );
    await g.update(policies("/nonexistent/b").slice(0, 1));
    assert.equal(k.rulesets.get(2), 0, "a removed policy's rule set is disabled");
    assert.deepEqual([...k.tasks], [[101, 1]], "and the task the agent keyed to it released");
    assert.deepEqual(g.status().rulesets.map((r) => r.ref), ["p.yaml#0"]);
  } finally {
    g.close();
  }
  assert.ok(k.closed);
});

Deno.test("removing a policy retires its rule set id: a task keyed to it does not get the next policy's rules", async () => {
  const k = new FakeKernel();
  const g = await started(k, [101, 102, 103, 104]);
  try {
    await g.update(policies("/nonexistent/a"));
    const ids = () => new Map(g.status().rulesets.map((r) => [r.ref, r.id]));
    assert.deepEqual([...ids()], [["p.yaml#0", 1], ["p.yaml#1", 2]]);
    // Keyed in-kernel to the first policy (bound at exec, or a child); the agent did not set it.
    k.tasks.set(104, 1);
    LABELS[104] = ["process:name=cat"];
    await g.update(parsed(TOOL)); // the first policy removed from the file
    assert.deepEqual([...ids()], [["p.yaml#0", 2]], "the second policy moved up, its id did not");
    assert.equal(k.rulesets.get(1), 0, "the removed policy's rule set is inactive (cgroup rules)");
    assert.equal(k.rulesets.get(2), (R.ACTIVE | R.MOUNT | R.AUDIT) >>> 0);
    assert.notEqual(k.tasks.get(104), ids().get("p.yaml#0"), "not the second policy's id");
    assert.equal(k.tasks.get(102), 2, "the second policy's process keeps its rule set");
    await g.update(parsed(OTHER + TOOL)); // a new policy in the first place
    assert.deepEqual([...ids()], [["p.yaml#0", 3], ["p.yaml#1", 2]], "a retired id is not reused");
    assert.equal(k.tasks.get(103), 3);
    await g.update(policies("/nonexistent/a"));
    assert.equal(ids().get("p.yaml#0"), 1, "the same policy back: its own id again");
  } finally {
    delete LABELS[104];
    g.close();
  }
});

Deno.test("a policy's id follows its selectors: new rules or a policy added above keep it", async () => {
  const k = new FakeKernel();
  const g = await started(k);
  try {
    await g.update(policies("/nonexistent/a"));
    const tool = () => g.status().rulesets.find((r) => r.mode === "audit")!;
    assert.equal(tool().id, 2);
    const TOOL2 = TOOL.replace("mount: deny", "mount: deny, syslog: deny");
    const changed = parsed(WEB("/nonexistent/a") + TOOL2);
    assert.equal(changed.length, 2);
    await g.update(changed);
    assert.equal(tool().id, 2, "the same id, rewritten in place");
    assert.equal(k.rulesets.get(2), (R.ACTIVE | R.MOUNT | R.SYSLOG | R.AUDIT) >>> 0);
    assert.equal(k.tasks.get(102), 2);
    // A policy inserted above both shifts their items, not their ids.
    const above = parsed(OTHER + WEB("/nonexistent/a") + TOOL2);
    await g.update(above);
    assert.deepEqual(
      g.status().rulesets.map((r) => [r.ref, r.id]),
      [["p.yaml#0", 3], ["p.yaml#1", 1], ["p.yaml#2", 2]],
    );
    assert.deepEqual([...k.tasks].sort((a, b) => a[0] - b[0]), [[101, 1], [102, 2], [103, 3]]);
  } finally {
    g.close();
  }
});

Deno.test("the sweep only lifts what the agent set: inherited rules stay", async () => {
  const k = new FakeKernel();
  const g = await started(k, [101, 104]);
  try {
    await g.update(policies("/x"));
    k.tasks.set(104, 1); // a child that inherited in-kernel; its labels do not match
    LABELS[104] = ["process:name=cat"];
    await g.sweep();
    assert.equal(k.tasks.get(104), 1);
  } finally {
    delete LABELS[104];
    g.close();
  }
});

Deno.test("events carry the policy, labels, SPIFFE ID; metrics count them", async () => {
  const k = new FakeKernel();
  const g = await started(k);
  try {
    await g.update(policies("/x"));
    const reader = g.subscribe({ label: "process:name=web" }).getReader();
    const base = {
      tsNs: 1n,
      cgroupId: 9n,
      tid: 101,
      uid: 33,
      rule: 1,
      arg: 0,
      ppid: 1,
      comm: "web",
      path: "/usr/bin/dash",
    };
    k.emit({ ...base, pid: 102, ruleset: 2, hook: "mount", outcome: "audited", rule: R.MOUNT });
    k.emit({ ...base, pid: 101, ruleset: 1, hook: "exec", outcome: "denied" });
    const line = JSON.parse(new TextDecoder().decode((await reader.read()).value));
    assert.equal(line.hook, "exec", "the filtered stream skipped the other workload's event");
    assert.equal(line.rule, "exec.deny");
    assert.equal(line.spiffeId, "spiffe://acme.corp/web/33");
    assert.deepEqual(line.labels, LABELS[101]);
    assert.deepEqual(line.policy, { file: "p.yaml", item: 0, line: 1 });
    await reader.cancel();
    const m = g.metricsText();
    assert.match(
      m,
      /camblet_runtime_guard_events_total\{outcome="denied",policy="p.yaml#0",rule="exec.deny"\} 1/,
    );
    assert.match(
      m,
      /camblet_runtime_guard_events_total\{outcome="audited",policy="p.yaml#1",rule="mount"\} 1/,
    );
    assert.match(m, /camblet_runtime_guard_lost_events_total 3/);
  } finally {
    g.close();
  }
});

Deno.test({
  name: "the canary refuses a kernel whose programs attach but do not enforce",
  ignore: skip(!(await Deno.stat("/bin/sh").then(() => true, () => false)) && "needs /bin/sh"),
  async fn() {
    const k = new FakeKernel();
    await assert.rejects(
      () =>
        RuntimeGuard.start({
          kernel: k,
          trustDomain: "t",
          labelsOf: () => Promise.resolve([]),
          listPids: () => [],
        }),
      (e) => e instanceof GuardCapabilityError && /do not enforce.*lsm=/.test(e.message),
    );
    assert.ok(k.closed, "everything detached again");
    assert.equal(k.rulesets.get(1023), 0, "the canary rule set is cleared");
  },
});
