import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "./_run.ts";
import { GitRemote } from "../sources/_git_repo.ts";

const policy = (name: string) =>
  `- selectors: [{process:name: ${name}}]\n  certificate: {workloadID: ${name}}\n`;

Deno.test("sources --check fetches and validates every source once", async (t) => {
  const remote = await GitRemote.create();
  const sha = await remote.commit({ "policies/web.yaml": policy("web") }, "web");
  const dir = remote.root;
  await Deno.mkdir(join(dir, "local"));
  await Deno.writeTextFile(join(dir, "local", "api.yaml"), policy("api"));
  const config = join(dir, "config.yaml");
  const write = (extra = "") =>
    Deno.writeTextFile(
      config,
      `agent:\n  trustDomain: acme.test\n  controlSocket: ${dir}/agent.sock\nplugins:\n  policySource:\n` +
        `    - type: git\n      name: fleet\n      url: ${remote.url}\n      cacheDir: ${dir}/cache\n` +
        `    - type: file\n      name: local\n      policies: ${dir}/local\n${extra}`,
    );
  try {
    await t.step("all sources ok: exit 0, one line per source", async () => {
      await write();
      const r = await runCli(["sources", "--check", "--config", config]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split("\n");
      assert.match(
        lines[0]!,
        /^policy set revision 1, applied .*: 2 policies \(0 egress entries\), 0 service addresses$/,
      );
      assert.match(lines[1]!, /^SOURCE\s+STATE\s+REVISION\s+LAST SUCCESS\s+LOCATION$/);
      assert.match(
        lines[2]!,
        new RegExp(`^git\\(fleet\\)\\s+ok\\s+${sha.slice(0, 12)}\\s+\\S+Z\\s+file://.*#HEAD$`),
      );
      assert.match(lines[3]!, /^file\(local\)\s+ok\s+sha256:[0-9a-f]{16}\s+\S+Z\s+\/.*\/local$/);
    });

    await t.step("a failing and an invalid source: exit 1 with every reason", async () => {
      await Deno.writeTextFile(
        join(dir, "local", "api.yaml"),
        "- certificate: {workloadID: [x]}\n",
      );
      // A port nothing listens on.
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      const url = `http://127.0.0.1:${port}/b.tar.gz`;
      await write(`    - type: http\n      name: hub\n      optional: true\n      url: ${url}\n`);
      const r = await runCli(["sources", "--check", "--config", config]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /2 of 3 policy sources failed: file\(local\), http\(hub\)/);
      assert.match(r.stdout, /^file\(local\)\s+rejected\s+-\s+/m);
      assert.match(
        r.stdout,
        /^http\(hub\) \(optional\)\s+failing\s+-\s+never\s+http:\/\/127.0.0.1:\d+\/b.tar.gz$/m,
      );
      assert.match(
        r.stdout,
        /^ {4}file\(local\): \/.*\/local\/api.yaml:1: item 0: certificate.workloadID: /m,
      );
      assert.match(r.stdout, /^ {4}http\(hub\): GET http:\/\/127.0.0.1:\d+\/b.tar.gz: .*refused/im);
      const json = await runCli(["sources", "--check", "--config", config, "--output", "json"]);
      const doc = JSON.parse(json.stdout);
      assert.deepEqual(doc.sources.map((s: { id: string; state: string }) => [s.id, s.state]), [
        ["git(fleet)", "ok"],
        ["file(local)", "rejected"],
        ["http(hub)", "failing"],
      ]);
    });

    await t.step("without --check and no agent: the configured sources, exit 0", async () => {
      const r = await runCli(["sources", "--config", config]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^note: Cannot reach the agent at .*agent.sock: no agent is running/);
      assert.match(r.stdout, /^git\(fleet\)\s+unknown\s+-\s+never\s+file:\/\/.*#HEAD$/m);
    });

    await t.step("--policies-path is the implicit file(paths) source", async () => {
      const r = await runCli([
        "sources",
        "--check",
        "--trust-domain",
        "acme.test",
        "--policies-path",
        join(dir, "local"),
        "--services-path",
        join(dir, "nothing"),
        "--control-socket",
        join(dir, "agent.sock"),
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /^file\(paths\)\s+failing/m);
      assert.match(r.stdout, /services path does not exist/);
    });

    await t.step("--help explains and shows examples", async () => {
      const r = await runCli(["sources", "--help"]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /Description:\n/);
      assert.match(
        r.stdout,
        /Examples:\n {2}camblet-agent sources\n {2}camblet-agent sources --check\n/,
      );
    });
  } finally {
    await remote.remove();
  }
});
