import assert from "node:assert/strict";
import type { AuditRecord } from "../audit/engine.ts";
import {
  eventFilterFromQuery,
  EventHub,
  eventMatches,
  type GuardEventRecord,
  mergeStreams,
} from "./events.ts";

const guard: GuardEventRecord = {
  time: "2026-12-03T00:00:00.000Z",
  outcome: "denied",
  hook: "exec",
  rule: "exec.deny",
  mode: "enforce",
  pid: 42,
  tid: 42,
  uid: 0,
  program: "web",
  path: "/bin/sh",
  arg: 0,
  cgroupId: "7",
  policy: { file: "policies/web.yaml", item: 0, source: "git(corp)" },
  labels: ["process:name=web"],
  spiffeId: "spiffe://acme.test/web",
};

const audit: AuditRecord = {
  kind: "audit",
  rule: "Read sensitive file untrusted",
  severity: "warning",
  output: "x",
  time: "2026-12-03T00:00:01.000Z",
  event: {
    syscall: "openat",
    ret: 3,
    path: "/etc/shadow",
    path2: "",
    mode: 0,
    argv: [],
    exe_name: "",
    addr: null,
    ptrace: null,
    mount: null,
  },
  process: {
    pid: 43,
    tid: 43,
    ppid: 42,
    name: "cat",
    exe: "/usr/bin/cat",
    cwd: "/",
    uid: 0,
    gid: 0,
    cmdline: "cat /etc/shadow",
    ancestors: [{ pid: 42, name: "sh", exe: "/bin/sh" }],
  },
  container: { id: "", labels: {} },
  labels: ["process:name=cat"],
  spiffe_id: "",
};

Deno.test("eventMatches: the guard's filters as before", () => {
  assert.ok(eventMatches({}, guard));
  assert.ok(eventMatches({ pid: 42, outcome: "denied", label: "process:name=web" }, guard));
  assert.ok(eventMatches({ policy: "web.yaml" }, guard));
  assert.ok(eventMatches({ policy: "git(corp)" }, guard));
  assert.ok(!eventMatches({ pid: 41 }, guard));
  assert.ok(!eventMatches({ outcome: "audited" }, guard));
  assert.ok(!eventMatches({ policy: "db.yaml" }, guard));
  assert.ok(!eventMatches({ label: "process:name=db" }, guard));
});

Deno.test("eventMatches: audit records by kind, pid, label, rule and severity; guard-only filters leave them out", () => {
  assert.ok(eventMatches({}, audit));
  assert.ok(eventMatches({ kind: "audit", pid: 43, label: "process:name=cat" }, audit));
  assert.ok(eventMatches({ rule: "sensitive", severity: "warning" }, audit));
  assert.ok(!eventMatches({ kind: "guard" }, audit));
  assert.ok(!eventMatches({ kind: "audit" }, guard));
  assert.ok(!eventMatches({ severity: "warning" }, guard), "severity is the audit's");
  assert.ok(!eventMatches({ outcome: "denied" }, audit), "outcome is the guard's");
  assert.ok(!eventMatches({ policy: "web" }, audit), "policy is the guard's");
  assert.ok(!eventMatches({ pid: 42 }, audit), "the process, not its parent");
  assert.ok(eventMatches({ rule: "exec." }, guard));
});

Deno.test("eventFilterFromQuery: every parameter; a bad pid or kind names it", () => {
  const q = (s: string) => eventFilterFromQuery(new URL(`http://x/v1/events?${s}`));
  assert.deepEqual(q("kind=audit&pid=7&rule=Read&severity=critical&label=a%3Db"), {
    kind: "audit",
    pid: 7,
    rule: "Read",
    severity: "critical",
    label: "a=b",
  });
  assert.deepEqual(q(""), {});
  assert.throws(() => q("pid=-1"), /pid must be a positive integer, got "-1"/);
  assert.throws(() => q("kind=all"), /kind must be guard or audit, got "all"/);
});

async function readLines(s: ReadableStream<Uint8Array>, n: number): Promise<string[]> {
  const out: string[] = [];
  const reader = s.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (out.length < n) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    const parts = buf.split("\n");
    buf = parts.pop()!;
    out.push(...parts);
  }
  await reader.cancel();
  return out;
}

Deno.test("EventHub + mergeStreams: guard lines get kind guard, both hubs on one stream, cancel ends both", async () => {
  const g = new EventHub();
  const a = new EventHub();
  const merged = mergeStreams([g.subscribe({}), a.subscribe({ severity: "warning" })]);
  assert.equal(g.subscribers + a.subscribers, 2);
  g.publish(guard);
  a.publish(audit);
  a.publish({ ...audit, severity: "notice" }); // filtered out
  const lines = (await readLines(merged, 2)).map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.kind).sort(), ["audit", "guard"]);
  assert.equal(lines.find((l) => l.kind === "guard").rule, "exec.deny");
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(g.subscribers + a.subscribers, 0, "cancelling the merged stream cancels both");
});
