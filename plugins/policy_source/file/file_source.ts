/**
 * The `file` policy source: policy and service files and directories on this host (what
 * `--policies-path` and `--services-path` always were), watched with a debounce, plus optionally a
 * local opa-compiled `policy.wasm` with its `data.json`, and syscall audit rules (`audit`: a
 * directory of Rego, or one policy.wasm or bundle). The revision is a digest of the content.
 *
 * @module
 */
import { z } from "zod";
import { durationMs, parseWith } from "../../sdk/config.ts";
import { definePlugin, type PluginContext } from "../../types.ts";
import { pathString } from "../_config.ts";
import { Poller, Serial } from "../_poller.ts";
import {
  decodeUtf8,
  formatSize,
  limitsSchema,
  problemOf,
  RefusedContentError,
  sha256Hex,
  type SourceLimits,
} from "../_safety.ts";
import type {
  DeliveredAudit,
  DeliveredOpa,
  PolicyDelivery,
  PolicySourceInstance,
  SourceCheck,
  SourceProblem,
} from "../types.ts";
import { NotRegularFileError, readRegularFile } from "../../sdk/regular_file.ts";
import { readFiles } from "./_list.ts";
import { type PathWatch, watchPaths } from "./_watch.ts";

const pathList = z.union([pathString.transform((s) => [s]), z.array(pathString)]);

const configSchema = z.object({
  /** Policy files or directories. */
  policies: pathList.default([]),
  /** Service files or directories. */
  services: pathList.default([]),
  /** Walk subdirectories too. */
  recursive: z.boolean().default(false),
  /** Paths that may be missing (a warning instead of a failure). */
  allowMissing: z.array(z.string()).default([]),
  /** Quiet time after a file event before reading. */
  debounce: durationMs.default(200),
  /** Also re-read this often (for file systems without change events, e.g. NFS). */
  pollInterval: durationMs.optional(),
  /** An opa-compiled issuance policy (`opa build -t wasm`'s policy.wasm). */
  wasm: pathString.optional(),
  /** Its OPA data document (JSON object). */
  data: pathString.optional(),
  /** Syscall audit rules: a directory (`.rego`, `.wasm`, `.tar.gz`, recursively) or one file. */
  audit: pathString.optional(),
  limits: limitsSchema,
}).strict().superRefine((c, ctx) => {
  if (!c.policies.length && !c.services.length && !c.wasm && !c.audit) {
    ctx.addIssue({ code: "custom", message: "give policies, services, wasm or audit" });
  }
  if (c.data && !c.wasm) {
    ctx.addIssue({ code: "custom", path: ["data"], message: "data needs wasm" });
  }
});

/** Parsed `file` source config. */
export type FileSourceConfig = z.output<typeof configSchema>;

/** Parses a `file` source config (pure). */
export function parseFileSourceConfig(raw: unknown) {
  return parseWith(configSchema, raw);
}

async function readBounded(path: string, limits: SourceLimits): Promise<Uint8Array> {
  try {
    return await readRegularFile(path, {
      check: ({ size }) => {
        if (size > limits.maxFileBytes) {
          throw new RefusedContentError(
            `file is ${formatSize(size)}, above the limit of ${formatSize(limits.maxFileBytes)}`,
            { file: path },
          );
        }
      },
    });
  } catch (e) {
    if (e instanceof NotRegularFileError) {
      throw new RefusedContentError(e.message.replace(/^"[^"]*" /, ""), { file: path });
    }
    throw e;
  }
}

async function readOpa(c: FileSourceConfig): Promise<DeliveredOpa | undefined> {
  if (!c.wasm) return undefined;
  const opa: DeliveredOpa = { path: c.wasm, wasm: await readBounded(c.wasm, c.limits) };
  if (c.data) {
    let doc: unknown;
    try {
      doc = JSON.parse(decodeUtf8(c.data, await readBounded(c.data, c.limits)));
    } catch (e) {
      if (e instanceof RefusedContentError) throw e;
      throw new RefusedContentError(`cannot read as JSON: ${(e as Error).message}`, {
        file: c.data,
      });
    }
    if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
      throw new RefusedContentError("is not a JSON object", { file: c.data });
    }
    opa.data = doc as Record<string, unknown>;
  }
  return opa;
}

const AUDIT_FILE = /\.(rego|wasm|tar\.gz)$/;

/** The audit rule files at `c.audit` (links are not followed; limits apply). */
async function readAudit(c: FileSourceConfig): Promise<DeliveredAudit | undefined> {
  if (!c.audit) return undefined;
  const root = c.audit;
  const files: DeliveredAudit["files"] = [];
  let total = 0;
  const add = async (path: string) => {
    if (files.length >= c.limits.maxFiles) {
      throw new RefusedContentError(`more than ${c.limits.maxFiles} files`, { file: root });
    }
    const data = await readBounded(path, c.limits);
    total += data.byteLength;
    if (total > c.limits.maxTotalBytes) {
      throw new RefusedContentError(
        `the audit rules are above the limit of ${formatSize(c.limits.maxTotalBytes)}`,
        { file: root },
      );
    }
    files.push({ path, data });
  };
  const walk = async (dir: string) => {
    const names: Deno.DirEntry[] = [];
    for await (const e of Deno.readDir(dir)) names.push(e);
    names.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    for (const e of names) {
      if (e.name.startsWith(".")) continue;
      if (e.isDirectory) await walk(`${dir}/${e.name}`);
      else if (e.isFile && AUDIT_FILE.test(e.name)) await add(`${dir}/${e.name}`);
    }
  };
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(root);
  } catch (e) {
    throw new RefusedContentError(`cannot read: ${(e as Error).message}`, { file: root });
  }
  if (info.isDirectory) await walk(root);
  else await add(root);
  if (!files.length) {
    throw new RefusedContentError("holds no .rego, .wasm or .tar.gz files", { file: root });
  }
  return { files };
}

/** A running `file` source. */
export class FileSource implements PolicySourceInstance {
  readonly type = "file";
  readonly location: string;
  readonly #c: FileSourceConfig;
  readonly #serial = new Serial();
  #revision: string | undefined;
  #watch: PathWatch | undefined;
  #debounce: ReturnType<typeof setTimeout> | undefined;
  #poller: Poller | undefined;
  #onCheck: ((r: SourceCheck) => void) | undefined;
  #disposed = false;

  constructor(config: FileSourceConfig) {
    this.#c = config;
    this.location = [
      ...config.policies,
      ...config.services,
      ...(config.wasm ? [config.wasm] : []),
      ...(config.audit ? [config.audit] : []),
    ].join(", ");
  }

  check(): Promise<SourceCheck> {
    return this.#serial.run(() => this.#read());
  }

  async #read(): Promise<SourceCheck> {
    const c = this.#c;
    const read = await readFiles({
      policies: c.policies,
      services: c.services,
      recursive: c.recursive,
      allowMissing: c.allowMissing,
      limits: c.limits,
    });
    const problems: SourceProblem[] = [...read.problems];
    let opa: DeliveredOpa | undefined;
    try {
      opa = await readOpa(c);
    } catch (e) {
      const p = problemOf(e);
      problems.push(p.file ? p : { file: c.wasm!, ...p });
    }
    let audit: DeliveredAudit | undefined;
    try {
      audit = await readAudit(c);
    } catch (e) {
      const p = problemOf(e);
      problems.push(p.file ? p : { file: c.audit!, ...p });
    }
    if (problems.length) return { kind: "failure", problems };
    const parts = read.files.map((f) => `${f.kind}\0${f.path}\0${f.text}`);
    if (opa) parts.push(`wasm\0${await sha256Hex(opa.wasm)}\0${JSON.stringify(opa.data ?? null)}`);
    for (const f of audit?.files ?? []) parts.push(`audit\0${f.path}\0${await sha256Hex(f.data)}`);
    const revision = `sha256:${(await sha256Hex(parts.join("\0\0"))).slice(0, 16)}`;
    if (revision === this.#revision) return { kind: "unchanged", revision };
    this.#revision = revision;
    const delivery: PolicyDelivery = { revision, files: read.files, warnings: read.warnings };
    if (opa) delivery.opa = opa;
    if (audit) delivery.audit = audit;
    return { kind: "delivery", delivery };
  }

  watch(onCheck: (r: SourceCheck) => void): void {
    this.#onCheck = onCheck;
    this.#rewatch();
    if (this.#c.pollInterval) {
      this.#poller = new Poller(() => this.check(), (r) => this.#report(r), {
        intervalMs: this.#c.pollInterval,
        jitter: 0.1,
        retryMinMs: this.#c.pollInterval,
      });
      this.#poller.start();
    }
  }

  #rewatch(): void {
    if (this.#disposed) return;
    this.#watch?.close();
    const c = this.#c;
    const paths = [...c.policies, ...c.services, ...(c.wasm ? [c.wasm] : [])];
    if (c.data) paths.push(c.data);
    if (c.audit) paths.push(c.audit);
    this.#watch = watchPaths(paths, c.recursive, () => {
      clearTimeout(this.#debounce);
      this.#debounce = setTimeout(() => {
        this.check().then((r) => this.#report(r));
      }, c.debounce);
    });
  }

  #report(r: SourceCheck): void {
    if (this.#disposed) return;
    // A path that appeared since the last watch is watched from now on.
    this.#rewatch();
    this.#onCheck?.(r);
  }

  async dispose(): Promise<void> {
    this.#disposed = true;
    clearTimeout(this.#debounce);
    this.#watch?.close();
    await this.#poller?.stop();
    await this.#serial.idle();
  }
}

/** The plugin. */
export const filePolicySource = definePlugin({
  kind: "policySource",
  name: "file",
  description: "policy and service files and directories on this host, watched for changes",
  parseConfig: parseFileSourceConfig,
  create(config: FileSourceConfig, _ctx: PluginContext): FileSource {
    return new FileSource(config);
  },
});
