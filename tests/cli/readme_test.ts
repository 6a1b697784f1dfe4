/**
 * Every shell block of the README, run in order from a fresh clone in a scratch root (see
 * _readme.ts for the convention), fails when one breaks. Blocks marked
 * `<!-- readme-test: skip: … -->` print their reason instead.
 */
import assert from "node:assert/strict";
import { BUNDLE_PASS, REPO_ROOT, works } from "./_run.ts";
import {
  background,
  blockCommands,
  type ReadmeBlock,
  readmeBlocks,
  runInScratchRoot,
} from "./_readme.ts";
import { skip } from "../_skip.ts";
import { peerMissing } from "../peers/ensure_peer.ts";

const why = Deno.uid() !== 0 || !works("unshare", ["--mount", "--net", "true"])
  ? "needs root and unshare (the README runs in mount and network namespaces)"
  : undefined;

/**
 * Blocks that cannot run here for a reason the machine decides (printed): npx without the
 * network needs deno in its cache, and `task peers` would build for minutes when cold.
 */
function machineSkip(b: ReadmeBlock): string | undefined {
  if (
    /\bnpx\b/.test(b.code) && !works("npx", ["-y", "deno@2.9.6", "--version"], {
      npm_config_offline: "true",
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
    })
  ) return "npx has no cached deno@2.9.6 and the namespace has no network";
  if (/task peers\b/.test(b.code)) {
    const missing = peerMissing("opa", "vault", "spire-server", "spire-agent");
    if (missing) return `would build the peers for minutes (${missing})`;
  }
  return undefined;
}

Deno.test("README: the convention's parser finds every sh block and its skip reason", async () => {
  const blocks = readmeBlocks(await Deno.readTextFile(`${REPO_ROOT}README.md`));
  assert.ok(blocks.length >= 6, `${blocks.length} sh blocks`);
  for (const b of blocks.filter((b) => b.skip)) {
    assert.ok(b.skip!.length > 10, `README.md:${b.line}: a skip needs a real reason`);
  }
  // Skips stay rare: what a newcomer needs first must run.
  const run = blocks.filter((b) => !b.skip).map((b) => b.code).join("\n");
  for (const needed of ["task demo", "task peers", "deno task bundle", "camblet-agent status"]) {
    assert.ok(run.includes(needed), `the README block with "${needed}" is skipped or gone`);
  }
});

Deno.test({
  name: "README: every command block works from a fresh clone (scratch root, own namespaces)",
  ignore: skip(BUNDLE_PASS ?? why),
  async fn() {
    // The clone's own README: what is committed is what is tested.
    const run: ReadmeBlock[] = [];
    const r = await runInScratchRoot(REPO_ROOT, async (clone) => {
      for (const b of readmeBlocks(await Deno.readTextFile(`${clone}/README.md`))) {
        const reason = b.skip ?? machineSkip(b);
        if (reason) console.error(`SKIP README.md:${b.line}: ${reason}`);
        else run.push(b);
      }
      return run;
    });
    const logs = r.logs.map((l, i) => `--- background ${i + 1}:\n${l}`).join("\n");
    assert.equal(r.code, 0, `${r.output}\n${logs}`);
    assert.match(r.output, /::done/);
    for (const b of run) assert.ok(r.output.includes(`::block README.md:${b.line}`));
  },
});

Deno.test("README runner: the convention (skip markers, continuations, & and comments)", () => {
  const md = [
    "<!-- readme-test: skip: needs a thing we lack -->",
    "",
    "```sh",
    "make coffee",
    "```",
    "```yaml",
    "a: 1",
    "```",
    "```sh",
    "# a comment line",
    "echo a \\",
    "  b   # trailing comment",
    "server --port 1 &   # background, with a comment",
    "a && b",
    "```",
  ].join("\n");
  const blocks = readmeBlocks(md);
  assert.deepEqual(blocks.map((b) => [b.line, b.skip]), [[3, "needs a thing we lack"], [
    9,
    undefined,
  ]]);
  assert.deepEqual(blockCommands(blocks[1]!.code), [
    "echo a    b   # trailing comment",
    "server --port 1 &   # background, with a comment",
    "a && b",
  ]);
  assert.deepEqual(background("server --port 1 &   # background, with a comment"), {
    command: "server --port 1",
    background: true,
  });
  assert.deepEqual(background("a && b"), { command: "a && b", background: false });
});

Deno.test({
  name: "README runner: a failing command fails the run and names its block",
  ignore: skip(why),
  async fn() {
    const r = await runInScratchRoot(REPO_ROOT, [
      { line: 10, code: "true\nsleep 30 &\n" },
      { line: 20, code: "echo before\nfalse   # breaks\necho after\n" },
    ]);
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /::fail README\.md:20: false \(exit 1\)/);
    assert.match(r.output, /before/);
    assert.doesNotMatch(r.output, /after|::done/);
  },
});
