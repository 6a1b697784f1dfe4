import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { getLogger } from "@logtape/logtape";
import { taskContextFromProc } from "../_lib/task_from_proc.ts";
import { spawnAs, spawnInNamespaces } from "../../../tests/fakes/attestor_processes.ts";
import type { TaskContext } from "../../types.ts";
import { PartialLabelsError } from "../_lib/partial.ts";
import { ProcessAttestor, processAttestor, type ProcessConfig } from "./process.ts";

const log = getLogger(["camblet", "test"]);
const DEFAULTS: ProcessConfig = {
  enabled: true,
  extractEnvs: false,
  envAllowList: [],
  hashTimeoutMs: 10_000,
};

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function task(pid: number): TaskContext {
  const t = taskContextFromProc(pid);
  assert.ok(t, `no process ${pid}`);
  return t;
}

Deno.test("process: ids of a process running as other uids and gids", async () => {
  const p = await spawnAs({ uid: 4001, euid: 4002, gid: 5001, egid: 5002, groups: [6001, 6002] });
  try {
    const a = new ProcessAttestor(DEFAULTS, { log });
    const labels = await a.collect(task(p.pid), AbortSignal.timeout(5000));
    assert.deepEqual(labels["process:pid"], [String(p.pid)]);
    assert.deepEqual(labels["process:name"], ["sleep"]);
    assert.deepEqual(labels["process:cmdline"], ["sleep 300"]);
    assert.deepEqual(labels["process:uid"], ["4002"], "process:uid is the effective uid");
    assert.deepEqual(labels["process:uid:real"], ["4001"]);
    assert.deepEqual(labels["process:uid:effective"], ["4002"]);
    assert.deepEqual(labels["process:gid"], ["5002"]);
    assert.deepEqual(labels["process:gid:real"], ["5001"]);
    assert.deepEqual(labels["process:gid:effective"], ["5002"]);
    assert.deepEqual(labels["process:gid:additional"], ["6001", "6002"]);
    const exe = await Deno.realPath("/proc/" + p.pid + "/exe");
    assert.deepEqual(labels["process:binary:path"], [exe]);
    assert.deepEqual(labels["process:binary:hash"], [sha256(await Deno.readFile(exe))]);
    assert.equal(Object.keys(labels).some((k) => k.startsWith("process:env:")), false);
  } finally {
    await p.stop();
  }
});

Deno.test("process: environment variables only by explicit allow-list (Go labelled all)", async (t) => {
  const env = { PATH: "/usr/bin:/bin", SECRET_TOKEN: "s3cr3t", APP_MODE: "prod", APP_ZONE: "eu" };
  const p = await spawnAs({ uid: 4011, gid: 4011, env });
  try {
    const tc = task(p.pid);
    await t.step("default config: none", async () => {
      const labels = await new ProcessAttestor(DEFAULTS, { log }).collect(
        tc,
        AbortSignal.timeout(5000),
      );
      assert.deepEqual(Object.keys(labels).filter((k) => k.includes(":env:")), []);
    });
    await t.step("Go's extractEnvs alone: still none", async () => {
      const cfg = processAttestor.parseConfig({ enabled: true, extractEnvs: true });
      assert.ok(cfg.ok);
      const labels = await new ProcessAttestor(cfg.value, { log }).collect(
        tc,
        AbortSignal.timeout(5000),
      );
      assert.deepEqual(Object.keys(labels).filter((k) => k.includes(":env:")), []);
    });
    await t.step("allow-list with prefix", async () => {
      const cfg = processAttestor.parseConfig({
        extractEnvs: true,
        envAllowList: ["APP_*", "HOME"],
      });
      assert.ok(cfg.ok);
      const labels = await new ProcessAttestor(cfg.value, { log }).collect(
        tc,
        AbortSignal.timeout(5000),
      );
      assert.deepEqual(labels["process:env:APP_MODE"], ["prod"]);
      assert.deepEqual(labels["process:env:APP_ZONE"], ["eu"]);
      assert.equal(labels["process:env:SECRET_TOKEN"], undefined);
      assert.equal(labels["process:env:PATH"], undefined);
    });
  } finally {
    await p.stop();
  }
});

Deno.test("process: binary hash through /proc/<pid>/exe in another mount+pid namespace", async () => {
  const rel = `/camblet-decoy-${crypto.randomUUID().slice(0, 8)}/sleep`;
  // A decoy at the same path in the agent's namespace: hashing by path would read this one.
  await Deno.mkdir(`/mnt${rel.slice(0, rel.lastIndexOf("/"))}`, { recursive: true });
  await Deno.writeTextFile(`/mnt${rel}`, "decoy, not the binary that runs");
  const p = await spawnInNamespaces(rel, `marker-${crypto.randomUUID()}`);
  try {
    const tc = task(p.pid);
    assert.notEqual(tc.namespace_ids.mnt, (task(Deno.pid)).namespace_ids.mnt);
    assert.notEqual(tc.namespace_ids.pid, (task(Deno.pid)).namespace_ids.pid);
    // The kernel reports the exe path as the process sees it.
    const kernelTask = { ...tc, command_path: `/mnt${rel}` };
    const labels = await new ProcessAttestor(DEFAULTS, { log }).collect(
      kernelTask,
      AbortSignal.timeout(5000),
    );
    assert.deepEqual(labels["process:binary:hash"], [sha256(p.binary)]);
    assert.notDeepEqual(labels["process:binary:hash"], [sha256(await Deno.readFile(`/mnt${rel}`))]);
    assert.deepEqual(labels["process:binary:path"], [`/mnt${rel}`]);
    assert.deepEqual(labels["process:pid"], [String(p.pid)], "global pid, not the namespace's 1");
  } finally {
    await p.stop();
    await Deno.remove(`/mnt${rel.slice(0, rel.lastIndexOf("/"))}`, { recursive: true });
  }
});

Deno.test("process: binary hashes cached by device, inode, size and mtime", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camblet-hash-" });
  const procs = [];
  try {
    await Deno.copyFile("/bin/sleep", `${dir}/a`);
    const a = new ProcessAttestor(DEFAULTS, { log });
    procs.push(await spawnAs({ uid: 0, gid: 0, command: `${dir}/a` }));
    procs.push(await spawnAs({ uid: 0, gid: 0, command: `${dir}/a` }));
    const h1 = await a.collect(task(procs[0]!.pid), AbortSignal.timeout(5000));
    const h2 = await a.collect(task(procs[1]!.pid), AbortSignal.timeout(5000));
    assert.deepEqual(h1["process:binary:hash"], h2["process:binary:hash"]);
    assert.equal(a.hasher.reads, 1, "the second process' binary was not read again");
    // A new version of the binary (new inode) is read again.
    const bytes = await Deno.readFile("/bin/sleep");
    await Deno.writeFile(`${dir}/b`, new Uint8Array([...bytes, 1, 2, 3]), { mode: 0o755 });
    procs.push(await spawnAs({ uid: 0, gid: 0, command: `${dir}/b` }));
    const h3 = await a.collect(task(procs[2]!.pid), AbortSignal.timeout(5000));
    assert.equal(a.hasher.reads, 2);
    assert.deepEqual(h3["process:binary:hash"], [sha256(await Deno.readFile(`${dir}/b`))]);
  } finally {
    for (const p of procs) await p.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("process: an exited process gets the task context's labels, no error", async () => {
  const p = await spawnAs({ uid: 4201, gid: 4201 });
  const tc = task(p.pid);
  await p.stop();
  const labels = await new ProcessAttestor(DEFAULTS, { log }).collect(
    tc,
    AbortSignal.timeout(5000),
  );
  assert.deepEqual(labels["process:uid:real"], ["4201"]);
  assert.deepEqual(labels["process:name"], ["sleep"]);
  assert.equal(labels["process:binary:hash"], undefined);
});

Deno.test("process: a thread id from the kernel is labelled with its process id", async () => {
  const tids = [];
  for await (const e of Deno.readDir(`/proc/${Deno.pid}/task`)) tids.push(Number(e.name));
  const tid = tids.find((t) => t !== Deno.pid);
  assert.ok(tid, "deno runs several threads");
  const tc = task(tid);
  const labels = await new ProcessAttestor(DEFAULTS, { log }).collect(
    tc,
    AbortSignal.timeout(5000),
  );
  assert.deepEqual(labels["process:pid"], [String(Deno.pid)]);
});

Deno.test("process: parseConfig reports unknown keys and bad types at once", () => {
  const r = processAttestor.parseConfig({ extractEnvs: "yes", envAllowlist: [] });
  assert.equal(r.ok, false);
  if (!r.ok) {
    assert.deepEqual(r.problems.map((p) => p.field).sort(), ["envAllowlist", "extractEnvs"]);
    assert.equal(
      r.problems.find((p) => p.field === "envAllowlist")!.message,
      'unknown field "envAllowlist"',
    );
  }
});

Deno.test("process: a binary still being hashed gives partial labels, then the hash", async () => {
  const dir = await Deno.makeTempDir({ prefix: "camblet-bighash-" });
  // A big binary: /bin/sleep padded to 64 MiB, so hashing takes a while.
  const bytes = await Deno.readFile("/bin/sleep");
  const big = new Uint8Array(64 << 20);
  big.set(bytes);
  await Deno.writeFile(`${dir}/big`, big, { mode: 0o755 });
  const p = await spawnAs({ uid: 0, gid: 0, command: `${dir}/big` });
  try {
    const a = new ProcessAttestor({ ...DEFAULTS, hashTimeoutMs: 0 }, { log });
    const tc = task(p.pid);
    const err = await a.collect(tc, AbortSignal.timeout(10_000)).then(
      () => assert.fail("expected partial labels"),
      (e) => e,
    );
    assert.ok(err instanceof PartialLabelsError, String(err));
    assert.match(err.message, /not hashed within 0 ms/);
    assert.deepEqual(err.labels["process:name"], ["big"]);
    assert.equal(err.labels["process:binary:hash"], undefined);
    const b = new ProcessAttestor({ ...DEFAULTS }, { log });
    const full = await b.collect(tc, AbortSignal.timeout(10_000));
    assert.deepEqual(full["process:binary:hash"], [sha256(big)]);
    // The first attestor kept hashing in the background and has the hash cached now.
    for (let i = 0; i < 200 && a.hasher.size === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(a.hasher.size, 1);
  } finally {
    await p.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("process: the agent's start time is used, and still checked against pid reuse", async (t) => {
  const p = await spawnAs({ uid: 4211, gid: 4211 });
  try {
    const tc = task(p.pid);
    const a = new ProcessAttestor(DEFAULTS, { log });
    const stat = Deno.readTextFileSync(`/proc/${p.pid}/stat`);
    const startTime = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
    await t.step("the start time the agent read: full labels", async () => {
      const labels = await a.collect(tc, AbortSignal.timeout(5000), { startTime });
      assert.deepEqual(labels["process:uid"], ["4211"]);
      assert.deepEqual(labels["process:cmdline"], ["sleep 300"]);
    });
    await t.step("a start time of another process life (reused pid): the task only", async () => {
      const labels = await a.collect(tc, AbortSignal.timeout(5000), { startTime: startTime - 1 });
      assert.deepEqual(labels["process:uid:real"], ["4211"]);
      assert.equal(labels["process:uid"], undefined);
      assert.equal(labels["process:cmdline"], undefined);
      assert.equal(labels["process:binary:hash"], undefined);
    });
    await t.step("gone when the agent looked: the task's labels only", async () => {
      const labels = await a.collect(tc, AbortSignal.timeout(5000), { startTime: null });
      assert.deepEqual(labels["process:uid:real"], ["4211"]);
      assert.deepEqual(labels["process:name"], ["sleep"]);
      assert.equal(labels["process:uid"], undefined);
    });
  } finally {
    await p.stop();
  }
});
