/**
 * The `process` attestor (Go: procfs): who the process is according to the kernel's task context
 * and `/proc`.
 *
 * Labels: `process:pid`, `process:name`, `process:cmdline`, `process:uid` (= effective),
 * `process:uid:real`, `process:uid:effective`, the same for `gid`, `process:gid:additional`
 * (one value per supplementary group), `process:binary:path`, `process:binary:hash`
 * (`sha256:<hex>` of the file the process runs, read through `/proc/<pid>/exe`), and
 * `process:env:<NAME>` for allow-listed environment variables only.
 *
 * The kernel's task context wins: when `/proc/<pid>` no longer describes the task that asked (the
 * pid was reused, or the process exec'd or changed ids meanwhile), only the task context's own
 * facts are labelled and a warning is logged.
 *
 * @module
 */
import { z } from "zod";
import {
  type Attestor,
  type CollectFacts,
  definePlugin,
  type Labels,
  type PluginContext,
  type TaskContext,
} from "../../types.ts";
import { LabelBuilder } from "../_lib/labels.ts";
import { parseWith } from "../../sdk/config.ts";
import { PartialLabelsError } from "../_lib/partial.ts";
import { BinaryHasher } from "./binary_hash.ts";
import {
  type ProcStatus,
  readCmdline,
  readEnviron,
  readExeLink,
  readNamespaceId,
  readStartTime,
  readStatus,
  unescapeStatusName,
} from "./proc_files.ts";

const configSchema = z.object({
  enabled: z.boolean().default(true),
  /** Go agent key; with us it only turns on the allow-list below. */
  extractEnvs: z.boolean().default(false),
  /** Environment variable names to label; `NAME*` matches a prefix. */
  envAllowList: z.array(z.string().min(1)).default([]),
  /**
   * How long a request waits for a binary's first hash (ms). A big binary not hashed yet is
   * labelled without its hash (a partial, briefly cached answer) while hashing goes on.
   */
  hashTimeoutMs: z.number().int().min(0).default(300),
}).strict();

/** Parsed `process` config. */
export type ProcessConfig = z.infer<typeof configSchema>;

/** True when `name` matches an allow-list entry (exact, or prefix before a trailing `*`). */
export function envAllowed(name: string, allowList: readonly string[]): boolean {
  return allowList.some((a) => a.endsWith("*") ? name.startsWith(a.slice(0, -1)) : a === name);
}

/**
 * Whether `/proc`'s view of the pid is the task the kernel described: same real uid/gid, same
 * comm, same mount and pid namespaces (when the kernel sent them). Returns the first mismatch.
 */
export async function procMismatch(
  task: TaskContext,
  status: ProcStatus,
  procRoot = "/proc",
): Promise<string | undefined> {
  if (status.uids[0] !== task.uid) return `real uid ${status.uids[0]} ≠ task uid ${task.uid}`;
  if (status.gids[0] !== task.gid) return `real gid ${status.gids[0]} ≠ task gid ${task.gid}`;
  const name = unescapeStatusName(status.name);
  if (task.command_name !== "" && name !== task.command_name) {
    return `comm "${name}" ≠ task comm "${task.command_name}"`;
  }
  for (const kind of ["mnt", "net"] as const) {
    const expected = task.namespace_ids?.[kind];
    if (!expected) continue;
    const actual = await readNamespaceId(task.pid, kind, procRoot);
    if (actual !== undefined && actual !== expected) {
      return `${kind} namespace ${actual} ≠ task's ${expected}`;
    }
  }
  return undefined;
}

/** The collector instance; exported for tests and the benchmark. */
export class ProcessAttestor implements Attestor {
  readonly name = "process";
  readonly #config: ProcessConfig;
  readonly #ctx: Pick<PluginContext, "log">;
  readonly #procRoot: string;
  readonly hasher: BinaryHasher;

  constructor(config: ProcessConfig, ctx: Pick<PluginContext, "log">, procRoot = "/proc") {
    this.#config = config;
    this.#ctx = ctx;
    this.#procRoot = procRoot;
    this.hasher = new BinaryHasher();
  }

  /** See the module doc. */
  async collect(task: TaskContext, signal: AbortSignal, facts?: CollectFacts): Promise<Labels> {
    const root = this.#procRoot;
    const b = new LabelBuilder("process");
    // Facts from the kernel hold even when /proc is gone or lies.
    b.add("pid", task.pid).add("name", task.command_name).add("uid:real", task.uid)
      .add("gid:real", task.gid).add("binary:path", task.command_path);

    // The agent's own read, when it passes one: a gone pid costs one failed read in all.
    const startBefore = facts ? facts.startTime ?? undefined : await readStartTime(task.pid, root);
    // Gone already (under a burst, many are): one failed read is enough.
    const status = startBefore === undefined ? undefined : await readStatus(task.pid, root);
    if (startBefore === undefined || status === undefined) return b.build();
    const mismatch = await procMismatch(task, status, root);
    if (mismatch) {
      this.#ctx.log.warn("Process in /proc is not the kernel's task; labelling the task only", {
        pid: task.pid,
        reason: mismatch,
      });
      return b.build();
    }

    const procLabels = new LabelBuilder("process");
    if (Number.isInteger(status.tgid) && status.tgid !== task.pid) {
      // The kernel sends the thread id; policies mean the process.
      procLabels.add("pid", status.tgid);
    }
    procLabels.add("uid", status.uids[1]).add("uid:effective", status.uids[1])
      .add("gid", status.gids[1]).add("gid:effective", status.gids[1])
      .add("gid:additional", ...status.groups);
    if (task.command_path === "") {
      procLabels.add("binary:path", await readExeLink(task.pid, root));
    }
    procLabels.add("cmdline", await readCmdline(task.pid, root));
    if (this.#config.extractEnvs && this.#config.envAllowList.length > 0) {
      const env = await readEnviron(task.pid, root);
      for (const [k, v] of Object.entries(env ?? {})) {
        if (envAllowed(k, this.#config.envAllowList)) procLabels.add(`env:${k.toUpperCase()}`, v);
      }
    }
    const hashing = this.hasher.hashOf(task.pid, signal, root);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const hash = await Promise.race([
      hashing,
      new Promise<"late">((r) => (timer = setTimeout(() => r("late"), this.#config.hashTimeoutMs))),
    ]).finally(() => clearTimeout(timer));
    // Keep hashing in the background: the next request finds the hash cached.
    if (hash === "late") hashing.catch(() => {});
    else procLabels.add("binary:hash", hash);

    // The pid may have been reused while we read: then nothing read from /proc is trusted.
    if (await readStartTime(task.pid, root) !== startBefore) return b.build();
    const out = b.build();
    for (const [k, v] of Object.entries(procLabels.build())) {
      out[k] = k === "process:pid" ? v : [...new Set([...(out[k] ?? []), ...v])];
    }
    if (hash === "late") {
      throw new PartialLabelsError(
        `binary of pid ${task.pid} not hashed within ${this.#config.hashTimeoutMs} ms (still hashing)`,
        out,
      );
    }
    return out;
  }

  /** Nothing to release. */
  dispose(): void {}
}

/** The plugin: `agent.metadataCollectors.procfs` in the Go agent's config. */
export const processAttestor = definePlugin({
  kind: "attestor",
  name: "process",
  description: "process ids, name, command line, binary path and sha256 (procfs)",
  parseConfig(raw: unknown) {
    return parseWith(configSchema, raw);
  },
  create(config: ProcessConfig, ctx: PluginContext) {
    if (config.extractEnvs && config.envAllowList.length === 0) {
      ctx.log.warn(
        "extractEnvs is on but envAllowList is empty: no environment variable is labelled",
      );
    }
    return new ProcessAttestor(config, ctx);
  },
});
