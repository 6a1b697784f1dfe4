import assert from "node:assert/strict";
import { join } from "node:path";
import { type PeerName, PEERS } from "./catalog.ts";
import { ensurePeer, peerMissing, peerPath, peersDir } from "./ensure_peer.ts";
import { runGo } from "./_go.ts";
import { skip } from "../_skip.ts";

const PREBUILD = new URL("./prebuild.ts", import.meta.url).pathname;

// A rebuild of opa into an empty cache dir is quick once the Go build cache is warm, which it is
// once `deno task peers` has built opa.
const noOpa = peerMissing("opa");

Deno.test("ensurePeer: an unknown name is a TypeError naming it", async () => {
  await assert.rejects(ensurePeer("nginx" as PeerName), /unknown name "nginx"/);
});

Deno.test("ensurePeer: a missing peer is an error naming the task, not a build", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camblet-peers-empty-" });
  const before = Deno.env.get("CAMBLET_PEERS_DIR");
  Deno.env.set("CAMBLET_PEERS_DIR", dir);
  try {
    assert.match(
      peerMissing("opa", "vault")!,
      /needs opa v\S+, vault v\S+, not built in .*: run `deno task peers` first/,
    );
    await assert.rejects(
      ensurePeer("opa", { build: false, log: (l) => assert.fail(`built: ${l}`) }),
      /opa v\S+ is not built .*run `deno task peers` first/,
    );
  } finally {
    if (before === undefined) Deno.env.delete("CAMBLET_PEERS_DIR");
    else Deno.env.set("CAMBLET_PEERS_DIR", before);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ensurePeer: a cached peer returns its path without building", {
  ignore: skip(noOpa),
}, async () => {
  const started = performance.now();
  const path = await ensurePeer("opa", { log: (line) => assert.fail(`built again: ${line}`) });
  assert.equal(path, peerPath("opa"));
  assert.ok(path.startsWith(peersDir()));
  assert.ok(performance.now() - started < 1000);
});

Deno.test("ensurePeer: two processes asking for a missing peer build it once", {
  ignore: skip(noOpa),
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "camblet-peers-cache-" });
  try {
    const spawn = () =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", PREBUILD, "opa"],
        env: { CAMBLET_PEERS_DIR: dir },
        stdout: "piped",
        stderr: "piped",
      }).output();
    const outs = await Promise.all([spawn(), spawn()]);
    const logs = outs.map((o) => new TextDecoder().decode(o.stderr));
    for (const [i, o] of outs.entries()) assert.equal(o.code, 0, logs[i]);
    const built = logs.join("\n").match(/^peers: built opa /gm) ?? [];
    assert.equal(built.length, 1, logs.join("\n---\n"));
    const { module, version } = PEERS.opa;
    const buildDir = join(dir, `opa-${version}`);
    assert.ok((await Deno.stat(join(buildDir, "opa"))).isFile);
    const record = JSON.parse(await Deno.readTextFile(join(buildDir, "BUILD.json")));
    assert.equal(record.module, module);
    assert.equal(record.version, version);
    assert.ok(record.commands[0].includes(`go install`), record.commands[0]);
    assert.ok(record.commands[0].includes(`${module}@${version}`), record.commands[0]);
    const entries = [];
    for await (const e of Deno.readDir(dir)) entries.push(e.name);
    assert.deepEqual(entries.filter((n) => n.includes("partial")), [], "partial dir left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runGo: a version the module proxy does not have fails with go's own error", async () => {
  const out = await Deno.makeTempDir({ prefix: "camblet-peers-fail-" });
  try {
    const build = { ...PEERS.opa, strategy: "source" as const, version: "v0.0.0-camblet-missing" };
    const error = await runGo(build, out, out, () => {}).then(() => undefined, (e) => e);
    assert.ok(error instanceof Error, "build of a missing version succeeded");
    assert.match(
      error.message,
      /go mod download -json github\.com\/open-policy-agent\/opa@v0\.0\.0-camblet-missing/,
    );
    assert.match(error.message, /exited with 1/);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
