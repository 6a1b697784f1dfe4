import assert from "node:assert/strict";
import { loadConfig } from "./load.ts";
import { ValidationError } from "../errors.ts";

async function withFile(text: string, fn: (path: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/config.yaml`;
  await Deno.writeTextFile(path, text);
  try {
    await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("defaults apply with no file, env or flags", async () => {
  const { config, file } = await loadConfig({ env: {}, search: [] });
  assert.equal(file, undefined);
  assert.equal(config.agent.trustDomain, "camblet");
  assert.equal(config.agent.defaultCertTTL, "24h");
  assert.deepEqual(config.agent.policiesPath, ["/etc/camblet/policies"]);
  assert.equal(config.agent.metadataCollectors.procfs.extractEnvs, false);
});

Deno.test("precedence is flags > env > file > defaults", async () => {
  await withFile(
    "agent:\n  trustDomain: file.td\n  defaultCertTTL: 2h\n  caPEMPath: /f/ca.pem\n",
    async (path) => {
      const { config, origins } = await loadConfig({
        configPath: path,
        env: { AGENT_TRUSTDOMAIN: "env.td", AGENT_DEFAULTCERTTTL: "3h" },
        flags: { "agent.trustDomain": "flag.td" },
      });
      assert.equal(config.agent.trustDomain, "flag.td");
      assert.equal(config.agent.defaultCertTTL, "3h");
      assert.equal(config.agent.caPEMPath, "/f/ca.pem");
      assert.equal(origins["agent.defaultCertTTL"], "env AGENT_DEFAULTCERTTTL");
    },
  );
});

Deno.test("env reaches nested collector keys and lists", async () => {
  const { config } = await loadConfig({
    search: [],
    env: {
      AGENT_METADATACOLLECTORS_KUBERNETES_KUBELETPORT: "10255",
      AGENT_METADATACOLLECTORS_DOCKER_ENABLED: "true",
      AGENT_POLICIESPATH: "/a,/b",
    },
  });
  assert.equal(config.agent.metadataCollectors.kubernetes.kubeletPort, 10255);
  assert.equal(config.agent.metadataCollectors.docker.enabled, true);
  assert.deepEqual(config.agent.policiesPath, ["/a", "/b"]);
});

Deno.test("every problem is reported at once with its layer", async () => {
  await withFile(
    "agent:\n  trustDomain: Bad TD\n  defaultCertTTL: forever\n  bogus: 1\n  metadataCollectors:\n    procfs: {enabled: maybe}\nextra: {}\n",
    async (path) => {
      const err = await loadConfig({
        configPath: path,
        env: { AGENT_NOPE: "1", AGENT_METADATACOLLECTORS_KUBERNETES_KUBELETPORT: "x" },
      }).then(() => undefined, (e) => e);
      assert.ok(err instanceof ValidationError);
      const text = err.message;
      assert.match(text, new RegExp(`${path}: agent.trustDomain: trust domain "Bad TD"`));
      assert.match(text, /agent.defaultCertTTL: Cannot parse duration "forever"/);
      assert.match(text, /agent.bogus: unknown field "bogus"/);
      assert.match(text, /extra: unknown field "extra"/);
      assert.match(text, /procfs.enabled: expected boolean, got "maybe"/);
      assert.match(text, /env AGENT_NOPE: unknown variable/);
      assert.match(
        text,
        /env AGENT_METADATACOLLECTORS_KUBERNETES_KUBELETPORT: agent.metadataCollectors.kubernetes.kubeletPort: expected number/,
      );
      assert.equal(err.problems.length, 7);
    },
  );
});

Deno.test("an explicit config file must exist and be YAML", async () => {
  await assert.rejects(
    loadConfig({ configPath: "/nonexistent/config.yaml", env: {} }),
    /\/nonexistent\/config.yaml: cannot read config file/,
  );
  await withFile("agent: [", async (path) => {
    await assert.rejects(loadConfig({ configPath: path, env: {} }), /cannot parse YAML/);
  });
  await withFile("- 1\n", async (path) => {
    await assert.rejects(loadConfig({ configPath: path, env: {} }), /must be a YAML map/);
  });
});

Deno.test("a config file others can read that holds secrets is warned about, naming the keys", async () => {
  const text = "plugins:\n  ca:\n    vault:\n      auth: {token: hvs.s3cret, tokenFile: /x}\n" +
    "  policySource:\n    - {type: http, url: 'http://h/x', token: abc}\n";
  const dir = await Deno.makeTempDir({ prefix: "camblet-config-secret-" });
  const path = `${dir}/config.yaml`;
  try {
    await Deno.writeTextFile(path, text);
    await Deno.chmod(path, 0o644);
    const loaded = await loadConfig({ configPath: path, env: {} });
    assert.deepEqual(loaded.warnings, [
      `config file "${path}" is readable by group or others (mode 0644) and holds secrets at ` +
      "plugins.ca.vault.auth.token, plugins.policySource.0.token: they may have leaked; make " +
      `it readable by the agent's user only (chmod 600 ${path}), or move them to files`,
    ]);
    assert.doesNotMatch(loaded.warnings!.join(""), /s3cret|abc/);
    await Deno.chmod(path, 0o600);
    assert.deepEqual((await loadConfig({ configPath: path, env: {} })).warnings, []);
    await Deno.writeTextFile(path, "agent: {trustDomain: acme.test}\n");
    await Deno.chmod(path, 0o644);
    assert.deepEqual((await loadConfig({ configPath: path, env: {} })).warnings, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
