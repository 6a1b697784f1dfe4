/**
 * Acceptance: a `git` source against a real local repository (git CLI): commits, an invalid
 * commit, a force-push, an unreachable remote and a signed-commit requirement. After every failure
 * the last good set is still what the agent serves; a restarted agent starts from the cache.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type PolicySnapshot, PolicySources } from "../../agent/sources/policy_sources.ts";
import { GitRemote, sshSigner } from "./_git_repo.ts";
import { specsFor } from "./_specs.ts";

const policy = (name: string) =>
  `- selectors: [{process:name: ${name}}]\n  certificate: {workloadID: ${name}}\n`;

function workloads(s: PolicySnapshot): string[] {
  return s.payloads.load_policies.policies.map((p) => p.certificate.workloadID).sort();
}

Deno.test("git source: commits, force-push and failures keep the last good set", async (t) => {
  const remote = await GitRemote.create();
  const keys = join(remote.root, "keys");
  await Deno.mkdir(keys);
  const signer = await sshSigner(keys, "ops");
  const c1 = await remote.commit({ "prod/policies/web.yaml": policy("web") }, "web", {
    sign: signer,
  });
  const config = {
    type: "git",
    name: "fleet",
    url: remote.url,
    ref: "main",
    dir: "prod",
    cacheDir: join(remote.root, "cache"),
    pollInterval: "1h",
    verifyCommit: { allowedSignersFile: signer.allowedSignersFile },
  };
  let sources = await PolicySources.start({ specs: specsFor([config]), trustDomain: "acme.test" });
  const state = () => sources.status().sources[0]!;
  try {
    await t.step("the signed commit is in force; its id is the revision", () => {
      assert.deepEqual(workloads(sources.current), ["web"]);
      assert.deepEqual(sources.current.sources, { "git(fleet)": c1 });
      assert.equal(state().location, `${remote.url}#main:prod`);
    });

    let c2 = "";
    await t.step("a new signed commit is applied", async () => {
      c2 = await remote.commit({ "prod/policies/api.yaml": policy("api") }, "api", {
        sign: signer,
      });
      const s = await sources.refresh();
      assert.equal(s.revision, 2);
      assert.deepEqual(workloads(s), ["api", "web"]);
    });

    await t.step("an invalid commit is rejected; the last good set stays", async () => {
      const bad = await remote.commit({ "prod/policies/api.yaml": "- certificate: {}\n" }, "bad", {
        sign: signer,
      });
      const s = await sources.refresh();
      assert.equal(s.revision, 2);
      assert.deepEqual(workloads(s), ["api", "web"]);
      assert.equal(state().state, "rejected");
      assert.equal(state().lastError?.revision, bad);
      assert.match(
        state().lastError!.problems.join("\n"),
        /^git\(fleet\): policies\/api.yaml:1: item 0: /m,
      );
    });

    await t.step("an unsigned commit is refused; the last good set stays", async () => {
      const unsigned = await remote.commit(
        { "prod/policies/api.yaml": policy("api2") },
        "unsigned",
      );
      await sources.refresh();
      assert.deepEqual(workloads(sources.current), ["api", "web"]);
      assert.equal(state().state, "failing");
      assert.match(
        state().lastError!.problems[0]!,
        new RegExp(`commit ${unsigned} is not signed by an allowed key`),
      );
    });

    await t.step("a force-push back to a good history is applied", async () => {
      await remote.git("reset", "-q", "--hard", c2);
      const c3 = await remote.commit({ "prod/policies/db.yaml": policy("db") }, "db", {
        sign: signer,
      });
      const s = await sources.refresh();
      assert.equal(s.revision, 3);
      assert.deepEqual(s.sources, { "git(fleet)": c3 });
      assert.deepEqual(workloads(s), ["api", "db", "web"]);
      assert.equal(state().state, "ok");
    });

    await t.step(
      "an unreachable remote keeps the set; a restart starts from the cache",
      async () => {
        const inForce = sources.current;
        await Deno.rename(remote.bare, `${remote.bare}.away`);
        try {
          await sources.refresh();
          assert.deepEqual(sources.current.payloads, inForce.payloads);
          assert.equal(state().state, "failing");
          assert.match(
            state().lastError!.problems[0]!,
            /^git\(fleet\): Cannot fetch .*does not appear to be a git repository/,
          );
          await sources.dispose();
          sources = await PolicySources.start({
            specs: specsFor([config]),
            trustDomain: "acme.test",
          });
          assert.deepEqual(
            sources.current.payloads,
            inForce.payloads,
            "the cached accepted commit",
          );
          assert.deepEqual(sources.current.sources, inForce.sources);
        } finally {
          await Deno.rename(`${remote.bare}.away`, remote.bare);
        }
      },
    );
  } finally {
    await sources.dispose();
    await remote.remove();
  }
});
