import assert from "node:assert/strict";
import { REPO_ROOT, runCli } from "./_run.ts";

const EXAMPLES = `${REPO_ROOT}policies/examples/`;

async function tempDir(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir();
  for (const [name, text] of Object.entries(files)) {
    await Deno.mkdir(`${dir}/${name.split("/").slice(0, -1).join("/")}`, { recursive: true });
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  return dir;
}

Deno.test("validate accepts the examples and prints a one-line summary", async (t) => {
  for (const set of ["camblet", "quickstart", "realistic"]) {
    await t.step(set, async () => {
      const r = await runCli([
        "validate",
        "--trust-domain",
        "acme.corp",
        "--policies-path",
        `${EXAMPLES}${set}/policies`,
        "--services-path",
        `${EXAMPLES}${set}/services`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      const lines = r.stdout.trim().split("\n");
      assert.equal(lines.length, 1, r.stdout);
      assert.match(
        lines[0]!,
        /^valid: \d+ polic(y|ies) \(\d+ egress entr(y|ies)\), \d+ service address(es)? from \d+ policy files? and 1 service file; trust domain "acme.corp"$/,
      );
    });
  }
});

Deno.test("validate --output json prints the compiled payloads keyed by kernel command", async () => {
  const r = await runCli([
    "validate",
    "--trust-domain=acme.test",
    `--policies-path=${EXAMPLES}quickstart/policies`,
    `--services-path=${EXAMPLES}quickstart/services`,
    "--output",
    "json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(Object.keys(out), ["load_config", "load_sd_info", "load_policies"]);
  assert.deepEqual(out.load_config, { trust_domain: "acme.test" });
  assert.deepEqual(out.load_sd_info, { "127.0.0.1:8000": { labels: ["app:label=web"] } });
  const [web, curl] = out.load_policies.policies;
  assert.equal(web.position, 0);
  assert.match(web.id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(web.selectors, [{
    "process:name=python3": true,
    "destination:port=8000": true,
    "direction=input": true,
  }]);
  assert.deepEqual(web.certificate, { workloadID: "web", ttl: "3600s" });
  assert.deepEqual(web.connection, {
    mtls: "STRICT",
    allowedSPIFFEIDs: ["spiffe://acme.test/curl"],
  });
  assert.equal(curl.position, 1);
});

Deno.test("validate prints every problem on its own line and exits 1", async () => {
  const dir = await tempDir({
    "policies/web.yaml": `- selectors: [{process:name: nginx}]
  certificate: {workloadID: web}
- selectors: [{process:name: nginx}]
  certificate: {workloadID: web}
- selectors: [{process:name: nginx, docker:image:name:nginx: true}]
  certificate: {workloadID: web, ttl: 2 hours}
  connection:
    allowedSPIFFEIDs: ["spiffe//x"]
`,
    "services/db.yaml": "- addresses: [{address: 10.0.0.1, port: 0}]\n  labels: {app: db}\n",
  });
  try {
    const r = await runCli([
      "validate",
      "--policies-path",
      `${dir}/policies`,
      "--services-path",
      `${dir}/services`,
    ]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    const lines = r.stderr.trim().split("\n");
    assert.deepEqual(lines, [
      `${dir}/policies/web.yaml:5: item 2: selectors[0]["docker:image:name:nginx"]: selector value is boolean true; it must be a string, a number or a list of them (quote it: "true")`,
      `${dir}/policies/web.yaml:6: item 2: certificate.ttl: Cannot parse duration "2 hours": expected a number with a unit (h, m, s, ms), e.g. "24h" or "3600s"`,
      `${dir}/policies/web.yaml:8: item 2: connection.allowedSPIFFEIDs[0]: "spiffe//x" is not a SPIFFE ID: it must start with "spiffe://"`,
      `${dir}/services/db.yaml:1: item 0: addresses[0].port: port number 0 is outside 1..65535`,
      "error: validation failed: Cannot load policies and services: 4 problems",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("validate reports config problems the same way", async () => {
  const r = await runCli(["validate", "--trust-domain", "ACME"], {
    env: { AGENT_DEFAULTCERTTTL: "soon" },
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--trust-domain.*trust domain "ACME" may contain only/);
  assert.match(r.stderr, /AGENT_DEFAULTCERTTTL.*Cannot parse duration "soon"/);
  assert.match(r.stderr, /^error: validation failed: Cannot load configuration: 2 problems$/m);
});

Deno.test("validate warns about missing default paths but succeeds", async () => {
  const dir = await tempDir({ "config.yaml": "agent:\n  trustDomain: acme.corp\n" });
  try {
    const r = await runCli(["validate", "--config", `${dir}/config.yaml`]);
    if (await Deno.stat("/etc/camblet/policies").catch(() => undefined)) return; // a real install
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^warning: \/etc\/camblet\/policies: policies path does not exist$/m);
    assert.match(r.stdout, /^valid: 0 policies/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("validate: an explicit path that does not exist is an error", async () => {
  const r = await runCli(["validate", "--policies-path", "/nonexistent/policies"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^\/nonexistent\/policies: policies path does not exist$/m);
});

Deno.test("validate: an unknown --output is a usage error", async () => {
  const r = await runCli(["validate", "--output", "yaml"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--output must be one of text, json, got "yaml"/);
  assert.match(r.stderr, /Usage: camblet-agent validate/);
});

Deno.test("validate --help reads like a man page", async () => {
  const r = await runCli(["validate", "--help"]);
  assert.equal(r.code, 0);
  for (
    const s of ["Description:", "Exit status:", "Examples:", "--output <format>", "--policies-path"]
  ) {
    assert.ok(r.stdout.includes(s), s);
  }
});

Deno.test("validate refuses selector values a typed label can never take (exit 1)", async () => {
  const dir = await tempDir({
    "policies/web.yaml": "- selectors: [{destination:port: 80000}]\n" +
      "  certificate: {workloadID: web}\n" +
      "- selectors: [{destination:port: eighty, process:uid: [0, -1], process:gid: wheel}]\n" +
      "  certificate: {workloadID: web2}\n",
    "services/none.yaml": "[]\n",
  });
  try {
    const r = await runCli([
      "validate",
      "--policies-path",
      `${dir}/policies`,
      "--services-path",
      `${dir}/services`,
    ]);
    assert.equal(r.code, 1, r.stderr);
    const f = `${dir}/policies/web.yaml`;
    for (
      const line of [
        `${f}:1: item 0: selectors[0]["destination:port"]: port 80000 is outside 1..65535`,
        `${f}:3: item 1: selectors[0]["destination:port"]: port "eighty" is not a whole number`,
        `${f}:3: item 1: selectors[0]["process:uid"][1]: uid "-1" is not a whole number`,
        `${f}:3: item 1: selectors[0]["process:gid"]: gid "wheel" is not a whole number`,
      ]
    ) assert.ok(r.stderr.includes(line), `missing ${line}\n${r.stderr}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
