import assert from "node:assert/strict";
import { join } from "node:path";
import { GitSource, parseGitSourceConfig } from "./git_source.ts";
import type { SourceCheck } from "../types.ts";
import { policySourceConformance } from "../conformance.ts";
import { GitRemote, sh, sshSigner } from "../../../tests/sources/_git_repo.ts";

const WEB = "- selectors: [{process:name: web}]\n  certificate: {workloadID: web}\n";
const DB = "- addresses: [{address: 10.0.0.5, port: 5432}]\n  labels: {app:label: db}\n";

function source(raw: Record<string, unknown>): GitSource {
  const parsed = parseGitSourceConfig(raw);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return new GitSource(parsed.value, String(raw["cacheDir"]));
}

function files(r: SourceCheck): Record<string, string> {
  assert.equal(r.kind, "delivery", JSON.stringify(r));
  if (r.kind !== "delivery") return {};
  return Object.fromEntries(r.delivery.files.map((f) => [`${f.kind}:${f.path}`, f.text]));
}

function failure(r: SourceCheck): string {
  assert.equal(r.kind, "failure", JSON.stringify(r));
  return r.kind === "failure"
    ? r.problems.map((p) => `${p.file ?? ""}: ${p.message}`).join("\n")
    : "";
}

Deno.test("git source against a real repository", async (t) => {
  const remote = await GitRemote.create();
  const cache = (name: string) => join(remote.root, "cache", name);
  const first = await remote.commit({
    "README.md": "policies for the fleet\n",
    "deploy/policies/web.yaml": WEB,
    "deploy/services/db.yaml": DB,
    "deploy/policies/rego/issuance.rego": "package x\n",
    "other/policies/ignored.yaml": "not: read\n",
  }, "first");
  const main = source({ url: remote.url, ref: "main", dir: "deploy", cacheDir: cache("main") });
  try {
    await t.step("a branch: the commit id is the revision; only dir's files are read", async () => {
      const r = await main.check();
      assert.ok(r.kind === "delivery");
      assert.equal(r.delivery.revision, first);
      assert.deepEqual(files(r), {
        "policies:policies/web.yaml": WEB,
        "services:services/db.yaml": DB,
      });
      assert.deepEqual(await main.check(), { kind: "unchanged", revision: first });
    });

    let second = "";
    await t.step("a new commit is a new delivery", async () => {
      second = await remote.commit({ "deploy/policies/db.yaml": WEB.replace(/web/g, "db") }, "db");
      const r = await main.check();
      assert.ok(r.kind === "delivery");
      assert.equal(r.delivery.revision, second);
      assert.deepEqual(Object.keys(files(r)), [
        "policies:policies/db.yaml",
        "policies:policies/web.yaml",
        "services:services/db.yaml",
      ]);
    });

    await t.step("a force-push replaces the branch and is followed", async () => {
      await remote.git("reset", "-q", "--hard", first);
      const forced = await remote.commit(
        { "deploy/services/db.yaml": DB.replace("5432", "6432") },
        "forced",
      );
      const r = await main.check();
      assert.ok(r.kind === "delivery");
      assert.equal(r.delivery.revision, forced);
      assert.notEqual(forced, second);
      assert.match(files(r)["services:services/db.yaml"]!, /6432/);
    });

    await t.step("a tag and a commit id as the ref", async () => {
      await remote.git("tag", "-a", "v1", "-m", "v1", first);
      await remote.git("push", "-q", "origin", "v1");
      const tag = source({ url: remote.bare, ref: "v1", dir: "deploy", cacheDir: cache("tag") });
      const r = await tag.check();
      assert.ok(r.kind === "delivery");
      assert.equal(r.delivery.revision, first);
      const pinned = source({ url: remote.url, ref: first, dir: "deploy", cacheDir: cache("sha") });
      const p = await pinned.check();
      assert.ok(p.kind === "delivery");
      assert.equal(p.delivery.revision, first);
      const missing = source({
        url: remote.url,
        ref: "0".repeat(40),
        dir: "deploy",
        cacheDir: cache("missing"),
      });
      assert.match(
        failure(await missing.check()),
        /Cannot fetch .*#0{40}:deploy: .*not our ref|Cannot fetch/,
      );
      for (const s of [tag, pinned, missing]) await s.dispose();
    });

    await t.step("an unreachable remote fails; the cache starts a restarted source", async () => {
      const nowhere = source({ url: "file:///nonexistent/repo.git", cacheDir: cache("nowhere") });
      assert.match(
        failure(await nowhere.check()),
        /Cannot fetch file:\/\/\/nonexistent\/repo.git#HEAD: .*does not appear to be a git repository/,
      );
      await nowhere.dispose();
      const r = await main.check();
      const accepted = r.kind === "delivery"
        ? r.delivery.revision
        : (r as { revision: string }).revision;
      await main.accepted(accepted);
      await Deno.rename(remote.bare, `${remote.bare}.moved`);
      try {
        assert.match(failure(await main.check()), /does not appear to be a git repository/);
        const restarted = source({
          url: remote.url,
          ref: "main",
          dir: "deploy",
          cacheDir: cache("main"),
        });
        const c = await restarted.check();
        assert.ok(c.kind === "delivery", JSON.stringify(c));
        assert.equal(c.delivery.revision, accepted);
        assert.match(c.delivery.warnings[0]!.message, /; using the cached commit [0-9a-f]{40}$/);
        await restarted.dispose();
      } finally {
        await Deno.rename(`${remote.bare}.moved`, remote.bare);
      }
    });

    await t.step("links, a missing directory and limits are refused", async () => {
      await Deno.symlink("/etc/passwd", join(remote.work, "deploy/policies/evil.yaml"));
      await remote.commit({}, "link");
      assert.match(failure(await main.check()), /^policies\/evil.yaml: is a symbolic link/);
      await remote.commit({ "deploy/policies/evil.yaml": null }, "unlink");
      const nodir = source({ url: remote.url, dir: "nope", cacheDir: cache("nodir") });
      assert.match(failure(await nodir.check()), /directory nope is not in commit [0-9a-f]{40}/);
      const small = source({
        url: remote.url,
        dir: "deploy",
        cacheDir: cache("small"),
        limits: { maxFileBytes: 10 },
      });
      assert.match(failure(await small.check()), /above the limit of 10 bytes/);
      for (const s of [nodir, small]) await s.dispose();
    });

    await t.step("polling picks up a commit", async () => {
      const polled = source({
        url: remote.url,
        ref: "main",
        dir: "deploy",
        cacheDir: cache("poll"),
        pollInterval: "100ms",
        jitter: 0,
      });
      await polled.check();
      const got = new Promise<SourceCheck>((resolve) =>
        polled.watch((r) => r.kind !== "unchanged" && resolve(r))
      );
      const sha = await remote.commit({ "deploy/policies/new.yaml": WEB }, "new");
      const r = await got;
      assert.ok(r.kind === "delivery", JSON.stringify(r));
      assert.equal(r.delivery.revision, sha);
      await polled.dispose();
    });
  } finally {
    await main.dispose();
    await remote.remove();
  }
});

Deno.test("git source can require commits signed by an allowed SSH key", async (t) => {
  const remote = await GitRemote.create();
  const keys = join(remote.root, "keys");
  await Deno.mkdir(keys);
  const allowed = await sshSigner(keys, "allowed");
  const stranger = await sshSigner(keys, "stranger");
  const s = source({
    url: remote.url,
    cacheDir: join(remote.root, "cache"),
    verifyCommit: { allowedSignersFile: allowed.allowedSignersFile },
  });
  try {
    await t.step("a commit signed by the allowed key is delivered", async () => {
      const sha = await remote.commit({ "policies/web.yaml": WEB }, "signed", { sign: allowed });
      assert.match(
        await sh("git", ["cat-file", "commit", sha], remote.work),
        /BEGIN SSH SIGNATURE/,
      );
      const r = await s.check();
      assert.ok(r.kind === "delivery", JSON.stringify(r));
      assert.equal(r.delivery.revision, sha);
    });
    await t.step("an unsigned commit is refused", async () => {
      const sha = await remote.commit({ "policies/web.yaml": WEB + "# unsigned\n" }, "unsigned");
      assert.match(
        failure(await s.check()),
        new RegExp(`commit ${sha} is not signed by an allowed key`),
      );
    });
    await t.step("a commit signed by another key is refused", async () => {
      const sha = await remote.commit({ "policies/x.yaml": "[]\n" }, "stranger", {
        sign: stranger,
      });
      const why = failure(await s.check());
      assert.match(why, new RegExp(`commit ${sha} is not signed by an allowed key: .*`));
    });
  } finally {
    await s.dispose();
    await remote.remove();
  }
});

Deno.test("git source config", () => {
  const bad = parseGitSourceConfig({ url: "ext::sh -c evil", dir: "../up", ref: "a b", x: 1 });
  assert.ok(!bad.ok);
  assert.deepEqual(bad.problems.map((p) => p.field).sort(), ["dir", "ref", "url", "x"]);
  const ok = parseGitSourceConfig({ url: "git@github.com:acme/policies.git", dir: "./prod/" });
  assert.ok(ok.ok && ok.value.dir === "prod" && ok.value.ref === "HEAD");
});

Deno.test("tipOf reads git ls-remote output", async () => {
  const { tipOf } = await import("./git_source.ts");
  const out = "aaa\tHEAD\naaa\trefs/heads/main\nbbb\trefs/tags/v1\nccc\trefs/tags/v1^{}\n" +
    "ddd\trefs/heads/both\neee\trefs/tags/both\n";
  assert.equal(tipOf(out, "HEAD"), "aaa");
  assert.equal(tipOf(out, "main"), "aaa");
  assert.equal(tipOf(out, "v1"), "ccc", "an annotated tag is its commit");
  assert.equal(tipOf(out, "both"), undefined, "ambiguous: a fetch decides");
  assert.equal(tipOf(out, "gone"), undefined);
});

Deno.test("git source conformance", async (t) => {
  const remote = await GitRemote.create();
  await policySourceConformance(t, async (initial) => {
    const publish = async (content: Record<string, string | Uint8Array>) => {
      await remote.git("rm", "-rq", "--ignore-unmatch", "policies", "services");
      await remote.commit(content, "publish");
    };
    await publish(initial);
    return {
      source: source({
        url: remote.url,
        cacheDir: join(remote.root, "cache"),
        pollInterval: "100ms",
        jitter: 0,
      }),
      publish,
      cleanup: () => remote.remove(),
    };
  });
});
