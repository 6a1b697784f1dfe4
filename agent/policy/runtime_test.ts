import assert from "node:assert/strict";
import { type Case, expectRejected, p } from "./_bad_input.ts";
import { parsePolicyFile } from "./parse_policy.ts";
import { describeRuntime, resolveRuntime, runtimePathProblem, runtimeSchema } from "./runtime.ts";
import { BUILTIN_PROFILES, profileNames } from "./runtime_profiles.ts";

const head = "- selectors: [{process:name: web}]\n  certificate: {workloadID: web}\n  runtime: ";

const BAD: Case[] = [
  {
    name: "unknown runtime field",
    kind: "policies",
    yaml: p(head + "{syslogs: deny}\n"),
    item: 1,
    field: "runtime.syslogs",
    message: /unknown field "syslogs"/,
  },
  {
    name: "mode",
    kind: "policies",
    yaml: p(head + "{mode: warn}\n"),
    item: 1,
    field: "runtime.mode",
    message: /mode is "warn"; use enforce or audit/,
  },
  {
    name: "unknown profile",
    kind: "policies",
    yaml: p(head + "{profiles: [baseline, strict]}\n"),
    item: 1,
    field: "runtime.profiles[1]",
    message: /unknown runtime profile "strict"; known: baseline, restricted/,
  },
  {
    name: "relative exec path",
    kind: "policies",
    yaml: p(head + "{exec: {deny: [/bin/sh, sh]}}\n"),
    item: 1,
    field: "runtime.exec.deny[1]",
    message: /"sh" must be absolute/,
  },
  {
    name: "dot-dot in a file path",
    kind: "policies",
    yaml: p(head + "{files: {denyRead: [/srv/../etc/shadow]}}\n"),
    item: 1,
    field: "runtime.files.denyRead[0]",
    message: /must not contain \. or \.\./,
  },
  {
    name: "duplicate path",
    kind: "policies",
    yaml: p(head + "{files: {denyWrite: [/etc/, /etc/]}}\n"),
    item: 1,
    field: "runtime.files.denyWrite[1]",
    message: /duplicate path "\/etc\/"/,
  },
  {
    name: "boolean instead of deny",
    kind: "policies",
    yaml: p(head + "{ptrace: true}\n"),
    item: 1,
    field: "runtime.ptrace",
    message: /true is not a rule value; use deny or allow/,
  },
  {
    name: "unknown key under exec",
    kind: "policies",
    yaml: p(head + "{exec: {block: [/bin/sh]}}\n"),
    item: 1,
    field: "runtime.exec.block",
    message: /unknown field "block"/,
  },
];

for (const c of BAD) {
  Deno.test(`bad runtime section is rejected with file, item and field: ${c.name}`, () =>
    expectRejected(c));
}

Deno.test("a valid runtime section reaches the parsed policy as written", () => {
  const { policies, problems } = parsePolicyFile(
    "web.yaml",
    head + "{mode: audit, profiles: [restricted], exec: {deny: [/bin/sh]}, mount: allow}\n",
    { trustDomain: "acme.corp" },
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(policies[0]!.policy.runtime, {
    mode: "audit",
    profiles: ["restricted"],
    exec: { deny: ["/bin/sh"] },
    mount: "allow",
  });
});

Deno.test("runtimePathProblem", () => {
  for (const ok of ["/bin/sh", "/etc/", "/usr/bin/*sh", "/srv/**", "/a/[ab]c?"]) {
    assert.equal(runtimePathProblem(ok), undefined, ok);
  }
  assert.match(runtimePathProblem("/a/**/b")!, /only as the last component/);
  assert.match(runtimePathProblem("/a//b")!, /empty component/);
  assert.match(runtimePathProblem("/" + "x".repeat(300))!, /longer than 255 bytes/);
});

Deno.test("resolveRuntime: profiles first, the policy's rules win, origins kept", () => {
  const r = resolveRuntime({
    profiles: ["restricted"],
    rawSockets: "allow",
    exec: { deny: ["/bin/sh"] },
    files: { denyRead: ["/etc/shadow", "/srv/secret"] },
  });
  assert.equal(r.mode, "enforce");
  assert.equal(r.deny.get("syslog"), "profile restricted");
  assert.equal(r.deny.get("setuidRoot"), "profile restricted");
  assert.ok(!r.deny.has("rawSockets"), "the policy's allow lifts the profile's deny");
  assert.equal(r.execAllow, undefined);
  assert.deepEqual(r.execDeny, [{ path: "/bin/sh", origin: "policy" }]);
  assert.deepEqual(r.denyRead, [
    { path: "/etc/shadow", origin: "profile restricted" },
    { path: "/etc/gshadow", origin: "profile restricted" },
    { path: "/srv/secret", origin: "policy" },
  ]);
  const lines = describeRuntime(r);
  assert.ok(lines.includes("exec deny /bin/sh  (policy)"), lines.join("\n"));
  assert.ok(lines.includes("mount deny  (profile restricted)"), lines.join("\n"));
});

Deno.test("resolveRuntime: an empty exec allow list allows nothing", () => {
  const r = resolveRuntime({ exec: { allow: [] } });
  assert.deepEqual(r.execAllow, []);
  assert.ok(describeRuntime(r).includes("exec allow: nothing"));
});

Deno.test("built-in profiles: baseline is enclave's set, restricted extends it", () => {
  assert.deepEqual(profileNames(), ["baseline", "restricted"]);
  const base = resolveRuntime({ profiles: ["baseline"] });
  assert.deepEqual([...base.deny.keys()].sort(), ["bpf", "modules", "mount", "ptrace", "syslog"]);
  for (const c of base.deny.keys()) {
    assert.equal(resolveRuntime({ profiles: ["restricted"] }).deny.has(c), true, c);
  }
  assert.equal(Object.getPrototypeOf(BUILTIN_PROFILES), null);
  assert.ok(!runtimeSchema.safeParse({ profiles: ["toString"] }).success);
});
