import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "./_run.ts";

const POLICIES = `# Camblet policy format (camblet-compat §2.1)
- selectors:
  - process:name: curl
    destination:port: 8000
  certificate:
    workloadID: curl/[process:uid]
    ttl: 3600s
  connection:
    allowedSPIFFEIDs: ["spiffe://{{.TrustDomain}}/web"]
  egress:
  - selectors:
    - app:label: web
    certificate:
      workloadID: curl-to-web
      dnsNames: [curl.acme.test]
- selectors:
  - process:name: python3
    direction: input
  certificate:
    workloadID: web/[process:uid]
    dnsNames: [web.acme.test]
  connection:
    mtls: DISABLE
`;

const SERVICES = `- addresses:
  - address: 127.0.0.1
    port: 8000
  labels:
    app:label: web
`;

async function fixture(policies = POLICIES): Promise<{ dir: string; args: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "explain_test_" });
  await Deno.mkdir(join(dir, "policies"));
  await Deno.mkdir(join(dir, "services"));
  await Deno.writeTextFile(join(dir, "policies", "web.yaml"), policies);
  await Deno.writeTextFile(join(dir, "services", "web.yaml"), SERVICES);
  return {
    dir,
    args: [
      "--policies-path",
      join(dir, "policies"),
      "--services-path",
      join(dir, "services"),
      "--trust-domain",
      "acme.test",
    ],
  };
}

const CURL_OUT = [
  "--label",
  "process:name=curl",
  "--label",
  "process:uid=1000",
  "--direction",
  "output",
  "--destination-ip",
  "127.0.0.1",
  "--port",
  "8000",
];

Deno.test("explain --help reads like a man page", async () => {
  const r = await runCli(["explain", "--help"]);
  assert.equal(r.code, 0, r.stderr);
  for (
    const s of [
      "Description:",
      "Examples:",
      "Exit status:",
      "--label <k=v>",
      "--labels-file <file>",
      "--direction <dir>",
      "--destination-port <n>",
      "--source-port <n>",
      "--destination-ip <ip>",
      "--source-ip <ip>",
      "--output <format>",
      "byte-swapped",
    ]
  ) assert.ok(r.stdout.includes(s), `missing ${s}`);
});

Deno.test("explain usage errors exit 2 with help", async (t) => {
  const cases: [string, string[], RegExp][] = [
    ["missing --direction", ["--label", "a=1"], /--direction is required/],
    ["bad --direction", ["--direction", "up"], /--direction must be input or output, got "up"/],
    ["bad --label", ["--direction", "input", "--label", "nonsense"], /"nonsense" is not a label/],
    ["bad --port", ["--direction", "input", "--port", "http"], /--port must be a port/],
    ["port out of range", ["--direction", "input", "--source-port", "70000"], /--source-port/],
    ["bad IP", ["--direction", "input", "--source-ip", "10.0.0"], /--source-ip must be an IPv4/],
    [
      "ports disagree",
      ["--direction", "input", "--port", "80", "--destination-port", "81"],
      /--port 80 and --destination-port 81 disagree/,
    ],
    ["bad --output", ["--direction", "input", "--output", "xml"], /--output must be one of/],
  ];
  for (const [name, args, message] of cases) {
    await t.step(name, async () => {
      const r = await runCli(["explain", ...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /Usage: camblet-agent explain/);
    });
  }
});

Deno.test("explain: outbound connection picks the egress entry", async () => {
  const { dir, args } = await fixture();
  try {
    const r = await runCli(["explain", ...CURL_OUT, ...args]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Result: intercepted, mutual TLS/);
    assert.match(r.stdout, /SPIFFE ID\s+spiffe:\/\/acme\.test\/curl-to-web/);
    assert.match(r.stdout, /policy\s+#\d+ \S*web\.yaml(:\d+)? item 0/);
    assert.match(r.stdout, /egress\s+#0 \S*web\.yaml(:\d+)? item 0 egress 0/);
    assert.match(r.stdout, /service entry\s+127\.0\.0\.1:8000 \(labels: app:label=web\)/);
    assert.match(r.stdout, /TTL\s+3600s \(from the policy\)/);
    assert.match(r.stdout, /DNS names\s+curl\.acme\.test/);
    assert.match(r.stdout, /allowed peers\s+spiffe:\/\/acme\.test\/web/);

    const j = await runCli(["explain", ...CURL_OUT, ...args, "--output", "json"]);
    assert.equal(j.code, 0, j.stderr);
    const out = JSON.parse(j.stdout);
    assert.equal(out.intercepted, true);
    assert.equal(out.reason, "egress");
    assert.equal(out.spiffeId, "spiffe://acme.test/curl-to-web");
    assert.equal(out.mtls, true);
    assert.equal(out.egress.source.egress, 0);
    assert.match(out.policy.source.file, /web\.yaml$/);
    assert.deepEqual(out.input.remote.labels, ["app:label=web"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("explain: inbound connection, placeholders, byte-swapped source port", async () => {
  const { dir, args } = await fixture();
  try {
    const r = await runCli([
      "explain",
      "--label",
      "process:name=python3",
      "--label",
      "process:uid=33",
      "--direction",
      "input",
      "--destination-port",
      "8000",
      "--source-port",
      "37118",
      "--source-ip",
      "::1",
      "--output",
      "json",
      ...args,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.spiffeId, "spiffe://acme.test/web/33");
    assert.equal(out.mtls, false);
    assert.equal(out.ttl, null);
    assert.equal(out.ttlUsed, "24h");
    assert.ok(out.input.labels.includes("source:port=65168"));
    assert.ok(out.input.labels.includes("source:ip=0000:0000:0000:0000:0000:0000:0000:0001"));
    assert.deepEqual(out.placeholders, [
      { placeholder: "[process:uid]", name: "process:uid", value: "33", from: "labels" },
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("explain: no policy and no service entry both exit 0", async () => {
  const { dir, args } = await fixture();
  try {
    const none = await runCli([
      "explain",
      "--label",
      "process:name=nginx",
      "--direction",
      "input",
      "--port",
      "8000",
      ...args,
    ]);
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /no policy matches: the connection stays plain TCP/);
    assert.match(none.stdout, /Closest policies that did not match \(2 of 2\)/);
    assert.match(none.stdout, /lacks process:name=python3/);

    const away = await runCli([
      "explain",
      ...CURL_OUT.slice(0, 6),
      "--destination-ip",
      "10.9.9.9",
      "--port",
      "8000",
      ...args,
    ]);
    assert.equal(away.code, 0, away.stderr);
    assert.match(away.stdout, /10\.9\.9\.9 is not in the service table/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("explain --labels-file reads lines, the kernel's answer, a JSON array and stdin", async (t) => {
  const { dir, args } = await fixture();
  const base = ["explain", "--direction", "input", "--port", "8000", "--output", "json", ...args];
  const spiffe = async (file: string, content: string, stdin?: string) => {
    const path = join(dir, file);
    await Deno.writeTextFile(path, content);
    const r = await runCli(
      [...base, "--labels-file", stdin === undefined ? path : "-"],
      stdin === undefined ? {} : { stdin },
    );
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).spiffeId;
  };
  try {
    await t.step("k=v lines with comments", async () => {
      assert.equal(
        await spiffe(
          "l.txt",
          "# from camblet agent augment\nprocess:name=python3\n\nprocess:uid=7\n",
        ),
        "spiffe://acme.test/web/7",
      );
    });
    await t.step("the kernel's augment answer", async () => {
      assert.equal(
        await spiffe("l.json", '{"labels":{"process:name=python3":true,"process:uid=8":true}}'),
        "spiffe://acme.test/web/8",
      );
    });
    await t.step("a JSON array", async () => {
      assert.equal(
        await spiffe("a.json", '["process:name=python3", "process:uid=9"]'),
        "spiffe://acme.test/web/9",
      );
    });
    await t.step("stdin", async () => {
      assert.equal(
        await spiffe("unused", "", "process:name=python3\nprocess:uid=10\n"),
        "spiffe://acme.test/web/10",
      );
    });
    await t.step("a bad line is reported with file and line, exit 1", async () => {
      const path = join(dir, "bad.txt");
      await Deno.writeTextFile(path, "process:name=python3\nnot a label\n");
      const r = await runCli([...base, "--labels-file", path]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /bad\.txt:2: "not a label" is not a label/);
    });
    await t.step("a missing file, exit 1", async () => {
      const r = await runCli([...base, "--labels-file", join(dir, "nope.txt")]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /Cannot read labels file ".*nope\.txt"/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("explain: invalid policies exit 1 with the problem", async () => {
  const { dir, args } = await fixture("- selectors: [{process:name: true}]\n  certificate: {}\n");
  try {
    const r = await runCli(["explain", "--direction", "input", ...args]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /web\.yaml/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
