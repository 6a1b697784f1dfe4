import assert from "node:assert/strict";
import { runCli } from "./_run.ts";
import { createCgroup, spawnAs } from "../fakes/attestor_processes.ts";

async function configFile(yaml: string): Promise<string> {
  const f = await Deno.makeTempFile({ suffix: ".yaml" });
  await Deno.writeTextFile(f, yaml);
  return f;
}

Deno.test("augment: sorted name=value lines of a live process running as another user", async () => {
  const p = await spawnAs({
    uid: 4501,
    gid: 4502,
    groups: [4503],
    env: { APP_ROLE: "web", DB_PASS: "x" },
  });
  const cfg = await configFile(
    "agent:\n  metadataCollectors:\n    procfs: {enabled: true, extractEnvs: true, envAllowList: [APP_ROLE]}\n    linuxos: {enabled: false}\n    sysfsdmi: {enabled: false}\n",
  );
  try {
    const r = await runCli(["--config", cfg, "augment", String(p.pid)]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.deepEqual(lines, [...lines].sort(), "sorted");
    for (
      const l of [
        `process:pid=${p.pid}`,
        "process:name=sleep",
        "process:cmdline=sleep 300",
        "process:uid=4501",
        "process:uid:real=4501",
        "process:uid:effective=4501",
        "process:gid=4502",
        "process:gid:additional=4503",
        "process:env:APP_ROLE=web",
      ]
    ) assert.ok(lines.includes(l), `missing ${l} in\n${r.stdout}`);
    assert.ok(lines.some((l) => /^process:binary:hash=sha256:[0-9a-f]{64}$/.test(l)));
    assert.ok(!r.stdout.includes("DB_PASS"));
    assert.ok(!r.stdout.includes("linuxos:"), "disabled collector");
  } finally {
    await p.stop();
    await Deno.remove(cfg);
  }
});

Deno.test("augment --output json: labels by name with every value", async () => {
  const p = await spawnAs({ uid: 4511, gid: 4511, groups: [7001, 7002] });
  try {
    const r = await runCli(["augment", String(p.pid), "--output", "json"]);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.pid, p.pid);
    assert.deepEqual(doc.labels["process:gid:additional"], ["7001", "7002"]);
    assert.deepEqual(doc.labels["process:uid"], ["4511"]);
    assert.ok(Array.isArray(doc.labels["linuxos:name"]), "linuxos is on by default");
    assert.deepEqual(doc.warnings, []);
  } finally {
    await p.stop();
  }
});

Deno.test("augment: usage errors exit 2, a missing process exits 1", async () => {
  for (
    const args of [["augment"], ["augment", "abc"], ["augment", "0"], [
      "augment",
      "1",
      "-o",
      "yaml",
    ]]
  ) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
  }
  const r = await runCli(["augment", "4194303"]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /Cannot augment pid 4194303: no such process/);
});

Deno.test("augment: a collector that cannot answer is a warning, not a failure", async () => {
  const id = "5a".repeat(32);
  const cg = await createCgroup(
    `camblet-test-${crypto.randomUUID().slice(0, 8)}/docker-${id}.scope`,
  );
  const p = await spawnAs({ uid: 4521, gid: 4521 });
  const cfg = await configFile(
    "agent:\n  metadataCollectors:\n    docker: {enabled: true, socketPath: unix:///nonexistent/docker.sock}\n",
  );
  try {
    await cg.add(p.pid);
    const r = await runCli(["--config", cfg, "augment", String(p.pid)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /warning: attestor\(docker\) failed: Cannot GET \/v1\.41\/containers\/5a5a/,
    );
    assert.match(r.stdout, /^process:uid=4521$/m, "the other collectors' labels");
  } finally {
    await p.stop();
    await cg.remove();
    await Deno.remove(cfg);
  }
});

Deno.test("augment: an invalid collector config names its path", async () => {
  const bad = await configFile(
    "agent:\n  metadataCollectors:\n    procfs: {enabled: true, envAllowList: [1]}\n",
  );
  try {
    const r = await runCli(["--config", bad, "augment", String(Deno.pid)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /metadataCollectors\.procfs\.envAllowList/);
  } finally {
    await Deno.remove(bad);
  }
});

Deno.test("augment --help has a description and examples", async () => {
  const r = await runCli(["augment", "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Description:/);
  assert.match(r.stdout, /Examples:/);
});
