/**
 * What a request costs in /proc reads (issue 12: under a burst every read, a failed one too, is
 * main-thread time): the runner hands the start time it read to the attestors, so the process
 * attestor does not read `/proc/<pid>/stat` again. Counted on the real filesystem calls.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { Attestation } from "./runner.ts";
import { taskContextFromProc } from "../../plugins/attestor/_lib/task_from_proc.ts";
import { ProcessAttestor } from "../../plugins/attestor/process/process.ts";
import type { Attestor, Labels, TaskContext } from "../../plugins/types.ts";
import { spawnAs } from "../../tests/fakes/attestor_processes.ts";

const log = getLogger(["camblet", "test"]);
const CONFIG = { enabled: true, extractEnvs: false, envAllowList: [], hashTimeoutMs: 10_000 };
/** Above Linux's PID_MAX_LIMIT (2^22): no process can have it, like the burst bench's pids. */
const NO_SUCH_PID = 4_194_305;

const FS_CALLS = [
  "readTextFileSync",
  "readTextFile",
  "readFileSync",
  "readFile",
  "readLinkSync",
  "readLink",
  "openSync",
  "open",
  "statSync",
  "stat",
  "lstatSync",
  "lstat",
  "realPathSync",
  "realPath",
] as const;

/** Runs `fn` with Deno's file calls counted per path under `/proc/<pid>/`. */
async function procReads(pid: number, fn: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const ns = Deno as unknown as Record<string, (...a: unknown[]) => unknown>;
  const saved = FS_CALLS.map((name) => [name, ns[name]!] as const);
  for (const [name, orig] of saved) {
    ns[name] = (...args: unknown[]) => {
      const p = String(args[0]);
      if (p.startsWith(`/proc/${pid}/`) || p === `/proc/${pid}`) seen.push(`${name} ${p}`);
      return orig.apply(Deno, args);
    };
  }
  try {
    await fn();
  } finally {
    for (const [name, orig] of saved) ns[name] = orig;
  }
  return seen;
}

/** A third-party attestor written against the two-argument contract. */
const plain: Attestor = {
  name: "plain",
  collect(task: TaskContext): Promise<Labels> {
    return Promise.resolve({ "plain:pid": [String(task.pid)] });
  },
};

Deno.test("attestation: a gone pid costs one failed /proc read, and gets the kernel's labels", async () => {
  const task = { ...taskContextFromProc(Deno.pid)!, pid: NO_SUCH_PID, uid: 4301, gid: 4302 };
  const attestation = new Attestation([new ProcessAttestor(CONFIG, { log }), plain], {
    sweepIntervalMs: 0,
  });
  try {
    let strings: string[] = [];
    const reads = await procReads(NO_SUCH_PID, async () => {
      strings = await attestation.augmentLabels(task);
    });
    assert.deepEqual(reads, [`readTextFileSync /proc/${NO_SUCH_PID}/stat`]);
    for (
      const l of [
        `process:pid=${NO_SUCH_PID}`,
        "process:uid:real=4301",
        "process:gid:real=4302",
        `process:name=${task.command_name}`,
        `plain:pid=${NO_SUCH_PID}`,
      ]
    ) assert.ok(strings.includes(l), `${l} missing from ${strings.join(", ")}`);
    assert.equal(attestation.cache.size, 0, "a gone process is not cached");
  } finally {
    await attestation.dispose();
  }
});

Deno.test("attestation: a live process' start time is read by the runner and the reuse check only", async () => {
  const p = await spawnAs({ uid: 4311, gid: 4311 });
  const attestation = new Attestation([new ProcessAttestor(CONFIG, { log })], {
    sweepIntervalMs: 0,
  });
  try {
    const task = taskContextFromProc(p.pid)!;
    let strings: string[] = [];
    const reads = await procReads(p.pid, async () => {
      strings = (await attestation.augment(task)).strings;
    });
    assert.equal(reads.filter((r) => r.endsWith("/stat")).length, 2, reads.join("\n"));
    assert.ok(strings.includes("process:uid=4311"), strings.join("\n"));
    assert.ok(strings.includes("process:cmdline=sleep 300"));
  } finally {
    await p.stop();
    await attestation.dispose();
  }
});
