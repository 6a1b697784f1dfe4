import assert from "node:assert/strict";
import { agentEntry, runCli } from "./_run.ts";

Deno.test("--help reads like a man page and exits 0", async () => {
  const r = await runCli(["--help"]);
  assert.equal(r.code, 0, r.stderr);
  for (
    const section of [
      "Usage: camblet-agent",
      "Description:",
      "Environment:",
      "Exit status:",
      "Examples:",
    ]
  ) {
    assert.ok(r.stdout.includes(section), `missing ${section}`);
  }
  for (
    const flag of [
      "--kernel-module-device",
      "--policies-path",
      "--services-path",
      "--trust-domain",
      "--default-cert-ttl",
      "--ca-pem-path",
      "--ca <plugin>",
      "--control-socket",
      "--config",
      "--verbosity",
    ]
  ) {
    assert.ok(r.stdout.includes(flag), `missing ${flag}`);
  }
});

Deno.test("every subcommand's --help has examples", async () => {
  const root = await runCli(["--help"]);
  const names = [...root.stdout.matchAll(/^ {2}([a-z][a-z-]*)(?: \[options\]| <|\s|\|)/gm)]
    .map((m) => m[1]!).filter((n) => n !== "help");
  assert.ok(names.includes("run") && names.includes("version"), names.join(","));
  for (const name of names) {
    const r = await runCli([name, "--help"]);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.match(r.stdout, /Examples:/, `${name} --help has no examples`);
  }
});

Deno.test("usage errors exit 2 and show help", async () => {
  const r = await runCli(["--no-such-flag"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option '--no-such-flag'/);
  assert.match(r.stderr, /Usage: camblet-agent/);
  const sub = await runCli(["no-such-command", "x"]);
  assert.equal(sub.code, 2, sub.stderr);
  const verbosity = await runCli(["-v", "loud", "version"]);
  assert.equal(verbosity.code, 2, verbosity.stderr);
});

Deno.test("version prints the version", async () => {
  const r = await runCli(["version"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^camblet-agent \d+\.\d+\.\d+ \(deno /);
  const short = await runCli(["--version"]);
  assert.match(short.stdout.trim(), /^\d+\.\d+\.\d+$/);
});

Deno.test("bad configuration exits 1 naming every layer", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/config.yaml`,
      "agent:\n  defaultCertTTL: soon\n  unknownKey: 1\n",
    );
    const r = await runCli(
      ["run", "--config", `${dir}/config.yaml`, "--trust-domain", "Not Valid"],
      { env: { AGENT_CAPEMPATH: "/x", AGENT_TYPO: "1" } },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /flag --trust-domain: agent.trustDomain: trust domain "Not Valid"/);
    assert.match(r.stderr, /config.yaml: agent.defaultCertTTL: Cannot parse duration "soon"/);
    assert.match(r.stderr, /config.yaml: agent.unknownKey: unknown field "unknownKey"/);
    assert.match(r.stderr, /env AGENT_TYPO: unknown variable/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Camblet users start the Go agent as `camblet-agent agent`; the alias must be the daemon itself.
Deno.test("`agent`, `run` and no subcommand all start the daemon", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const flags = [
      "--driver",
      "kernel",
      "--kernel-module-device",
      `${dir}/no-device`,
      "--control-socket",
      `${dir}/agent.sock`,
      "--policies-path",
      dir,
      "--services-path",
      dir,
    ];
    for (const sub of [["agent"], ["run"], []]) {
      const r = await runCli([...sub, ...flags]);
      assert.equal(r.code, 1, `${sub.join(" ") || "(none)"}: ${r.stderr}`);
      assert.match(r.stderr, /"Data plane" kind=kernel reason="--driver kernel"/);
      assert.match(r.stderr, /the camblet kernel module is not loaded/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a mistyped command is named, with the closest one, and exits 2", async () => {
  const r = await runCli(["stauts"]);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(
    r.stderr.trim(),
    "error: unknown command 'stauts', did you mean 'status'? (see camblet-agent --help)",
  );
  assert.equal(r.stdout, "", "no help dump");
  const far = await runCli(["xyzzy"]);
  assert.equal(far.code, 2);
  assert.match(far.stderr, /^error: unknown command 'xyzzy' \(see camblet-agent --help\)\n$/);
});

Deno.test("the description names both data planes", async () => {
  const r = await runCli(["--help"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /camblet-driver\s+or\s+its\s+own\s+eBPF-steered\s+proxy\s+data\s+plane/);
  assert.match(r.stdout, /proxy data plane/);
});

Deno.test("validate and explain list no daemon-only flags", async () => {
  for (const cmd of ["validate", "explain"]) {
    const r = await runCli([cmd, "--help"]);
    assert.equal(r.code, 0, r.stderr);
    for (const flag of ["--policies-path", "--services-path", "--trust-domain"]) {
      assert.ok(r.stdout.includes(flag), `${cmd} lacks ${flag}`);
    }
    for (
      const flag of [
        "--kernel-module-device",
        "--driver",
        "--fail-closed",
        "--ca-pem-path",
        "--ca <plugin>",
        "--control-socket",
        "--metrics-address",
      ]
    ) {
      assert.ok(!r.stdout.includes(flag), `${cmd} --help lists daemon-only ${flag}`);
    }
  }
  const explain = await runCli(["explain", "--help"]);
  assert.ok(!explain.stdout.includes("camblet agent augment"), "the Go agent's spelling");
  assert.match(explain.stdout, /camblet-agent augment <pid>/);
});

Deno.test("the program starts with a #! line and is executable (so it can be the command)", async () => {
  const entry = agentEntry(); // dist/camblet-agent.js in CI's second pass
  const head = (await Deno.readTextFile(entry)).split("\n", 1)[0];
  assert.equal(
    head,
    "#!/usr/bin/env -S deno run -A --v8-flags=--max-semi-space-size=2,--optimize-for-size",
  );
  assert.ok(((await Deno.stat(entry)).mode! & 0o111) !== 0, `${entry} is not executable`);
});
