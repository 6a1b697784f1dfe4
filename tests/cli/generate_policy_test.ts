import assert from "node:assert/strict";
import { parse } from "yaml";
import { runCli } from "./_run.ts";
import { spawnAs } from "../fakes/attestor_processes.ts";

async function validates(yaml: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const dir = await Deno.makeTempDir({ prefix: "camblet-gp-" });
  try {
    await Deno.mkdir(`${dir}/policies`);
    await Deno.mkdir(`${dir}/services`);
    await Deno.writeTextFile(`${dir}/policies/generated.yaml`, yaml);
    return await runCli([
      "validate",
      "--policies-path",
      `${dir}/policies`,
      "--services-path",
      `${dir}/services`,
      "--output",
      "json",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("generate-policy: default labels, STRICT, 24h; validate accepts it", async () => {
  const p = await spawnAs({ uid: 4601, gid: 4602 });
  try {
    const r = await runCli(["generate-policy", String(p.pid), "shop/web"]);
    assert.equal(r.code, 0, r.stderr);
    const doc = parse(r.stdout);
    assert.equal(doc.length, 1);
    const exe = await Deno.realPath(`/proc/${p.pid}/exe`);
    assert.deepEqual(doc[0].selectors, [{
      "process:binary:path": exe,
      "process:gid": "4602",
      "process:name": "sleep",
      "process:uid": "4601",
    }]);
    assert.deepEqual(doc[0].certificate, { workloadID: "shop/web", ttl: "86400s" });
    assert.deepEqual(doc[0].connection, { mtls: "STRICT" });
    assert.match(r.stdout, /process:uid: "4601"/, "numbers stay strings");
    const v = await validates(r.stdout);
    assert.equal(v.code, 0, v.stderr);
    const compiled = JSON.parse(v.stdout).load_policies.policies[0];
    assert.deepEqual(Object.keys(compiled.selectors[0]).sort(), [
      `process:binary:path=${exe}`,
      "process:gid=4602",
      "process:name=sleep",
      "process:uid=4601",
    ]);
  } finally {
    await p.stop();
  }
});

Deno.test("gp: --label, --add-label prefix wildcard, certificate and connection flags", async () => {
  const p = await spawnAs({ uid: 4611, gid: 4611, groups: [9001, 9002] });
  try {
    const r = await runCli([
      "gp",
      String(p.pid),
      "team/[process:uid]",
      "--label",
      "process:uid",
      "--add-label",
      "process:gid:*",
      "--add-label",
      "process:binary:hash",
      "--cert-dns-name",
      "web.acme.corp,api.acme.corp",
      "--cert-ttl",
      "1h30m",
      "--allowed-spiffe-id",
      "spiffe://camblet/frontend",
      "--disable-mtls",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const [policy] = parse(r.stdout);
    const sel = policy.selectors[0];
    assert.deepEqual(Object.keys(sel).sort(), [
      "process:binary:hash",
      "process:gid:additional",
      "process:gid:effective",
      "process:gid:real",
      "process:uid",
    ]);
    assert.equal(
      sel["process:gid:additional"],
      "9001",
      "multi-valued labels collapse to one value",
    );
    assert.match(sel["process:binary:hash"], /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(policy.certificate, {
      workloadID: "team/[process:uid]",
      dnsNames: ["web.acme.corp", "api.acme.corp"],
      ttl: "5400s",
    });
    assert.deepEqual(policy.connection, {
      mtls: "DISABLE",
      allowedSPIFFEIDs: ["spiffe://camblet/frontend"],
    });
    const v = await validates(r.stdout);
    assert.equal(v.code, 0, v.stderr);
  } finally {
    await p.stop();
  }
});

Deno.test("generate-policy: no matching label fails with 'could not find selectors'", async () => {
  const r = await runCli(["generate-policy", String(Deno.pid), "x", "--label", "k8s:pod:name"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /could not find selectors/);
});

Deno.test("generate-policy: invalid flags are usage errors", async () => {
  const cases = [
    ["generate-policy", String(Deno.pid), "bad id with spaces"],
    ["generate-policy", String(Deno.pid), "ok", "--cert-ttl", "soon"],
    ["generate-policy", String(Deno.pid), "ok", "--cert-dns-name", "not a host"],
    ["generate-policy", String(Deno.pid), "ok", "--allowed-spiffe-id", "http://x"],
    ["generate-policy", String(Deno.pid)],
    ["generate-policy", "-1", "ok"],
  ];
  for (const args of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(" ")} → ${r.code}: ${r.stderr}`);
  }
});
