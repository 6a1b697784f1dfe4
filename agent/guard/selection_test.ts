import assert from "node:assert/strict";
import { parsePolicyFile } from "../policy/parse_policy.ts";
import { cgroupOf, runtimePolicies, selectPolicy, targetOf } from "./selection.ts";

const YAML = `
- selectors: [{docker:label:app: web}]
  certificate: {workloadID: web}
  runtime: {profiles: [restricted]}
- selectors: [{process:name: nginx}, {process:name: nginx, process:uid: "0"}]
  certificate: {workloadID: nginx}
  runtime: {exec: {deny: [/bin/sh]}}
- selectors: [{process:uid: "0"}]
  certificate: {workloadID: root}
  runtime: {syslog: deny}
- selectors: [{process:binary:path: [/usr/sbin/nginx, /opt/x]}]
  certificate: {workloadID: bin}
  runtime: {mount: deny}
- selectors: [{process:name: plain}]
  certificate: {workloadID: plain}
`;

const policies = () => {
  const r = parsePolicyFile("p.yaml", YAML, { trustDomain: "t" });
  assert.deepEqual(r.problems, []);
  return runtimePolicies(r.policies, { realPath: (p) => p, readDir: () => [] });
};

Deno.test("runtimePolicies keeps only policies with a runtime section, with their key kind", () => {
  const ps = policies();
  assert.deepEqual(ps.map((p) => [p.ref, p.target]), [
    ["p.yaml#0", "cgroup"],
    ["p.yaml#1", "task"],
    ["p.yaml#2", "task"],
    ["p.yaml#3", "task"],
  ]);
  assert.deepEqual(ps[3]!.binds, ["/usr/sbin/nginx", "/opt/x"]);
  assert.deepEqual(ps[1]!.binds, []);
  assert.equal(ps[0]!.line, 2);
});

Deno.test("a policy's key follows its file and selectors, not its item or rules", () => {
  const fs = { realPath: (p: string) => p, readDir: () => [] };
  const parse = (yaml: string) => {
    const r = parsePolicyFile("p.yaml", yaml, { trustDomain: "t" });
    assert.deepEqual(r.problems, []);
    return runtimePolicies(r.policies, fs);
  };
  const a = "- selectors: [{process:name: a, process:uid: '0'}]\n  certificate: {workloadID: a}\n";
  const b = "- selectors: [{process:name: b}]\n  certificate: {workloadID: b}\n";
  const [pa, pb] = parse(`${a}  runtime: {syslog: deny}\n${b}  runtime: {mount: deny}\n`);
  const [qb] = parse(`${b}  runtime: {mount: deny, ptrace: deny}\n`);
  assert.equal(qb!.ref, "p.yaml#0");
  assert.equal(qb!.key, pb!.key, "b moved up and its rules changed: the same key");
  assert.notEqual(pa!.key, pb!.key);
  const reordered = parse(
    "- selectors: [{process:uid: '0', process:name: a}]\n  certificate: {workloadID: a}\n" +
      "  runtime: {syslog: deny}\n",
  );
  assert.equal(reordered[0]!.key, pa!.key, "label order within a map does not matter");
  // Same selectors twice in a file: told apart by their occurrence.
  const twice = parse(`${b}  runtime: {mount: deny}\n${b}  runtime: {syslog: deny}\n`);
  assert.equal(twice[0]!.key, pb!.key);
  assert.notEqual(twice[1]!.key, twice[0]!.key);
  const other = runtimePolicies(
    parsePolicyFile("q.yaml", `${b}  runtime: {mount: deny}\n`, { trustDomain: "t" }).policies,
    fs,
  );
  assert.notEqual(other[0]!.key, pb!.key, "another file, another key");
});

Deno.test("targetOf: only container and unit labels key by cgroup", () => {
  assert.equal(targetOf([[["systemd:unit", ["a.service"]]]]), "cgroup");
  assert.equal(targetOf([[["k8s:pod:name", ["x"]], ["docker:id", ["y"]]]]), "cgroup");
  assert.equal(targetOf([[["docker:id", ["y"]], ["process:uid", ["0"]]]]), "task");
  assert.equal(targetOf([[]]), "task", "{} matches every process: keyed per task");
});

Deno.test("selectPolicy: the most specific map wins, then file order; losers say why", () => {
  const ps = policies();
  const s = selectPolicy(ps, ["process:name=nginx", "process:uid=0"])!;
  assert.equal(s.policy.ref, "p.yaml#1");
  assert.equal(s.map, 1);
  assert.deepEqual(s.matched, ["process:name=nginx", "process:uid=0"]);
  assert.deepEqual(s.lost, [{ ref: "p.yaml#2", why: "less specific (1 < 2 labels)" }]);
  assert.equal(selectPolicy(ps, ["process:name=plain"]), undefined, "no runtime section");
  assert.equal(selectPolicy(ps, ["docker:label:app=web"])!.policy.target, "cgroup");
});

Deno.test("cgroupOf reads /proc/<pid>/cgroup and the directory's inode (the cgroup id)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/proc/7`, { recursive: true });
    await Deno.mkdir(`${dir}/cg/system.slice/web.service`, { recursive: true });
    await Deno.writeTextFile(`${dir}/proc/7/cgroup`, "0::/system.slice/web.service\n");
    const c = cgroupOf(7, `${dir}/proc`, `${dir}/cg`)!;
    assert.equal(c.level, 2);
    assert.equal(c.id, BigInt(Deno.statSync(`${dir}/cg/system.slice/web.service`).ino!));
    assert.equal(cgroupOf(8, `${dir}/proc`, `${dir}/cg`), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
