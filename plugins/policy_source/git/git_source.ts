/**
 * The `git` policy source: a repository (https, ssh, git or file URL, or a local path), a ref
 * (branch, tag or full commit id) and a subdirectory, fetched shallowly into a cache repository
 * and read straight from git's objects (nothing is checked out, so no link in the tree can point
 * outside it). Optionally the commit must be signed by an allowed key (`git verify-commit` with an
 * SSH allowed-signers file or a GnuPG home). The commit id is the revision. When the remote cannot
 * be reached at startup, the last commit the agent accepted (kept in the cache) is used.
 *
 * @module
 */
import { join } from "node:path";
import { getLogger } from "@logtape/logtape";
import { z } from "zod";
import { parseWith } from "../../sdk/config.ts";
import { definePlugin, type PluginContext } from "../../types.ts";
import { pathString, pollFields, readTokenFile } from "../_config.ts";
import { isAuditPath, readLayout } from "../_layout.ts";
import { isSourceFileName } from "../_names.ts";
import { Poller, Serial } from "../_poller.ts";
import {
  formatSize,
  limitsSchema,
  problemOf,
  RefusedContentError,
  sha256Hex,
  sourcePath,
} from "../_safety.ts";
import type { PolicyDelivery, PolicySourceInstance, SourceCheck } from "../types.ts";
import { git, type GitEnv, gitOk, parseCatFileBatch, parseLsTree, tail } from "./_git.ts";

// A token file others can read is warned about (once).
const tokenLog = getLogger(["camblet", "plugin", "policySource", "git"]);

const URL_FORMS = /^(https?|ssh|git|file):\/\/[^\s]+$|^[\w.-]+@[\w.-]+:[^\s]+$|^\/[^\s]*$/;

const configSchema = z.object({
  /** `https://…`, `ssh://…`, `git@host:path`, `file:///…` or an absolute path. */
  url: z.string().regex(
    URL_FORMS,
    "must be an https, http, ssh, git or file URL, user@host:path, or an absolute path",
  ),
  /** Branch, tag or full commit id (default: the remote's HEAD). */
  ref: z.string().min(1).regex(/^[^\s:~^?*[\\]+$/, "is not a valid ref").default("HEAD"),
  /** Subdirectory holding policies/ and services/ (default: the repository root). */
  dir: z.string().default("").transform((d, ctx) => {
    if (d === "" || d === "." || d === "/") return "";
    try {
      return sourcePath(d);
    } catch (e) {
      ctx.addIssue({ code: "custom", message: (e as Error).message });
      return z.NEVER;
    }
  }),
  ...pollFields,
  /** Where the shallow clone is kept (default: /var/cache/camblet/git/<digest of url, ref, dir>). */
  cacheDir: pathString.optional(),
  /** Bearer token for https (inline; prefer tokenFile). */
  token: z.string().min(1).optional(),
  tokenFile: pathString.optional(),
  /** SSH private key and known_hosts for ssh URLs. */
  sshKeyFile: pathString.optional(),
  knownHostsFile: pathString.optional(),
  /** Require the commit to be signed by a key in an SSH allowed-signers file or a GnuPG home. */
  verifyCommit: z.union([
    z.object({ allowedSignersFile: pathString }).strict(),
    z.object({ gnupgHome: pathString }).strict(),
  ]).optional(),
  limits: limitsSchema,
}).strict().superRefine((c, ctx) => {
  if (c.token && c.tokenFile) {
    ctx.addIssue({ code: "custom", path: ["tokenFile"], message: "give token or tokenFile" });
  }
});

/** Parsed `git` source config. */
export type GitSourceConfig = z.output<typeof configSchema>;

/** Parses a `git` source config (pure). */
export function parseGitSourceConfig(raw: unknown) {
  return parseWith(configSchema, raw);
}

const FULL_SHA = /^[0-9a-f]{40}$|^[0-9a-f]{64}$/;
const ACCEPTED_REF = "refs/camblet/accepted";
const ROOT_FILES = new Set([".manifest", "data.json", "policy.wasm"]);

function relevant(path: string): boolean {
  if (ROOT_FILES.has(path) || isAuditPath(path)) return true;
  const segs = path.split("/");
  return (segs[0] === "policies" || segs[0] === "services") && segs.length > 1 &&
    !segs.some((s) => s.startsWith(".")) && isSourceFileName(segs.at(-1)!);
}

/**
 * The commit `ref` names in `git ls-remote` output (a tag's peeled commit), or undefined when
 * it is absent or ambiguous (then a fetch decides).
 */
export function tipOf(lsRemote: string, ref: string): string | undefined {
  const refs = new Map<string, string>();
  for (const line of lsRemote.split("\n")) {
    const [sha, name] = line.split("\t");
    if (sha && name) refs.set(name, sha);
  }
  const names = ref === "HEAD" || ref.startsWith("refs/")
    ? [ref]
    : [`refs/heads/${ref}`, `refs/tags/${ref}`].filter((n) => refs.has(n));
  if (names.length !== 1) return undefined;
  return refs.get(`${names[0]}^{}`) ?? refs.get(names[0]!);
}

/** A running `git` source. */
export class GitSource implements PolicySourceInstance {
  readonly type = "git";
  readonly location: string;
  readonly #c: GitSourceConfig;
  readonly #cache: string;
  readonly #serial = new Serial();
  #revision: string | undefined;
  #poller: Poller | undefined;
  #ac = new AbortController();

  constructor(config: GitSourceConfig, cacheDir: string) {
    this.#c = config;
    this.#cache = cacheDir;
    // Credentials in a URL (https://user:pass@host) never reach a status line.
    this.location = `${config.url.replace(/\/\/[^/@]*@/, "//")}#${config.ref}${
      config.dir ? `:${config.dir}` : ""
    }`;
  }

  async #env(): Promise<GitEnv> {
    const c = this.#c;
    const env: Record<string, string> = {};
    const secrets: string[] = [];
    const token = c.token ?? (c.tokenFile ? await readTokenFile(c.tokenFile, tokenLog) : "");
    if (token) {
      // In the environment, not in argv (which other users can read).
      env["GIT_CONFIG_COUNT"] = "1";
      env["GIT_CONFIG_KEY_0"] = "http.extraHeader";
      env["GIT_CONFIG_VALUE_0"] = `Authorization: Bearer ${token}`;
      secrets.push(token);
    }
    const ssh = ["ssh", "-o", "BatchMode=yes"];
    if (c.sshKeyFile) ssh.push("-i", c.sshKeyFile, "-o", "IdentitiesOnly=yes");
    if (c.knownHostsFile) {
      ssh.push("-o", `UserKnownHostsFile=${c.knownHostsFile}`, "-o", "StrictHostKeyChecking=yes");
    }
    env["GIT_SSH_COMMAND"] = ssh.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
    if (c.verifyCommit && "gnupgHome" in c.verifyCommit) {
      env["GNUPGHOME"] = c.verifyCommit.gnupgHome;
    }
    return { env, secrets, timeoutMs: c.timeout };
  }

  check(signal?: AbortSignal): Promise<SourceCheck> {
    return this.#serial.run(async () => {
      try {
        return await this.#check(
          signal ? AbortSignal.any([signal, this.#ac.signal]) : this.#ac.signal,
        );
      } catch (e) {
        return { kind: "failure", problems: [problemOf(e)] };
      }
    });
  }

  async #check(signal: AbortSignal): Promise<SourceCheck> {
    const env = { ...(await this.#env()), cwd: this.#cache, signal };
    await Deno.mkdir(this.#cache, { recursive: true, mode: 0o700 });
    const initialised = await Deno.stat(join(this.#cache, "HEAD")).then(() => true, () => false);
    if (!initialised) {
      await gitOk("Cannot create the cache repository", ["init", "--bare", "--quiet", "."], env);
    }
    const c = this.#c;
    // A pinned commit never changes; otherwise ask the remote for its tip first, which is much
    // cheaper than a fetch when nothing changed (most polls).
    if (FULL_SHA.test(c.ref) && this.#revision === c.ref) {
      return { kind: "unchanged", revision: c.ref };
    }
    if (this.#revision !== undefined && !FULL_SHA.test(c.ref)) {
      const listed = await git(["ls-remote", "--", c.url, c.ref], env);
      if (listed.code !== 0) {
        const why = tail(listed.stderr) || `exit ${listed.code}`;
        return {
          kind: "failure",
          problems: [{ message: `Cannot fetch ${this.location}: ${why}` }],
        };
      }
      if (tipOf(new TextDecoder().decode(listed.stdout), c.ref) === this.#revision) {
        return { kind: "unchanged", revision: this.#revision };
      }
    }
    let sha: string;
    const warnings = [];
    const fetched = await git(
      ["fetch", "--depth=1", "--no-tags", "--quiet", "--", c.url, c.ref],
      env,
    );
    if (fetched.code === 0) {
      sha = await this.#revParse("FETCH_HEAD^{commit}", env);
    } else {
      const why = `Cannot fetch ${this.location}: ${
        tail(fetched.stderr) || `exit ${fetched.code}`
      }`;
      const cached = this.#revision === undefined
        ? await this.#revParse(`${ACCEPTED_REF}^{commit}`, env).catch(() => undefined)
        : undefined;
      if (!cached) return { kind: "failure", problems: [{ message: why }] };
      sha = cached;
      warnings.push({ message: `${why}; using the cached commit ${cached}` });
    }
    if (FULL_SHA.test(c.ref) && sha !== c.ref) {
      return { kind: "failure", problems: [{ message: `fetched ${sha}, not commit ${c.ref}` }] };
    }
    if (sha === this.#revision) return { kind: "unchanged", revision: sha };
    if (c.verifyCommit) await this.#verify(sha, env);
    const delivery: PolicyDelivery = { revision: sha, ...(await this.#read(sha, env)) };
    delivery.warnings.unshift(...warnings);
    this.#revision = sha;
    return { kind: "delivery", delivery };
  }

  async #revParse(rev: string, env: GitEnv & { cwd: string }): Promise<string> {
    const out = await gitOk(`Cannot resolve ${rev}`, ["rev-parse", "--verify", "-q", rev], env);
    return new TextDecoder().decode(out).trim();
  }

  async #verify(sha: string, env: GitEnv & { cwd: string }): Promise<void> {
    const v = this.#c.verifyCommit!;
    const args = "allowedSignersFile" in v
      ? ["-c", `gpg.ssh.allowedSignersFile=${v.allowedSignersFile}`, "verify-commit", sha]
      : ["verify-commit", sha];
    const r = await git(args, env);
    if (r.code !== 0) {
      throw new RefusedContentError(
        `commit ${sha} is not signed by an allowed key: ${tail(r.stderr) || `exit ${r.code}`}`,
      );
    }
  }

  async #read(sha: string, env: GitEnv & { cwd: string }) {
    const c = this.#c;
    const args = ["ls-tree", "-r", "-l", "-z", "--full-tree", sha];
    if (c.dir) args.push("--", c.dir);
    const all = parseLsTree(await gitOk(`Cannot list commit ${sha}`, args, env));
    const prefix = c.dir ? `${c.dir}/` : "";
    if (c.dir && !all.some((e) => e.path.startsWith(prefix))) {
      throw new RefusedContentError(`directory ${c.dir} is not in commit ${sha}`);
    }
    const wanted = all
      .map((e) => ({ ...e, path: e.path.slice(prefix.length) }))
      .filter((e) => relevant(e.path));
    for (const e of wanted) {
      if (e.mode === "120000") {
        throw new RefusedContentError("is a symbolic link; links are not followed", {
          file: e.path,
        });
      }
      if (e.type !== "blob") {
        throw new RefusedContentError(`is a ${e.type}, not a file`, { file: e.path });
      }
      if (e.size > c.limits.maxFileBytes) {
        throw new RefusedContentError(
          `file is ${formatSize(e.size)}, above the limit of ${formatSize(c.limits.maxFileBytes)}`,
          { file: e.path },
        );
      }
    }
    if (wanted.length > c.limits.maxFiles) {
      throw new RefusedContentError(`more than ${c.limits.maxFiles} files`);
    }
    const total = wanted.reduce((n, e) => n + e.size, 0);
    if (total > c.limits.maxTotalBytes) {
      throw new RefusedContentError(
        `the files are ${formatSize(total)}, above the limit of ${
          formatSize(c.limits.maxTotalBytes)
        }`,
      );
    }
    const stdin = new TextEncoder().encode(wanted.map((e) => `${e.object}\n`).join(""));
    const out = wanted.length
      ? await gitOk("Cannot read objects", ["cat-file", "--batch"], { ...env, stdin })
      : new Uint8Array();
    const blobs = parseCatFileBatch(out, wanted.length);
    const layout = readLayout(
      wanted.map((e, i) => ({ path: e.path, data: blobs[i]! })),
      c.limits.maxTotalBytes,
    );
    return {
      files: layout.files,
      warnings: layout.warnings,
      ...(layout.opa ? { opa: layout.opa } : {}),
      ...(layout.audit ? { audit: layout.audit } : {}),
    };
  }

  /** Keeps `revision` in the cache, for starting when the remote is down. */
  accepted(revision: string): Promise<void> {
    return this.#serial.run(async () => {
      const env = { ...(await this.#env()), cwd: this.#cache };
      await git(["update-ref", ACCEPTED_REF, revision], env).catch(() => {});
    });
  }

  watch(onCheck: (r: SourceCheck) => void): void {
    const c = this.#c;
    this.#poller = new Poller(() => this.check(), onCheck, {
      intervalMs: c.pollInterval,
      jitter: c.jitter,
      retryMinMs: c.retryMin,
    });
    this.#poller.start();
  }

  async dispose(): Promise<void> {
    this.#ac.abort();
    await this.#poller?.stop();
    await this.#serial.idle();
  }
}

/** The default cache directory of a git source. */
export async function defaultGitCacheDir(c: GitSourceConfig): Promise<string> {
  const key = (await sha256Hex(`${c.url}\n${c.ref}\n${c.dir}`)).slice(0, 16);
  return `/var/cache/camblet/git/${key}`;
}

/** The plugin. */
export const gitPolicySource = definePlugin({
  kind: "policySource",
  name: "git",
  description: "policies and services from a Git repository, polled; optionally signed commits",
  parseConfig: parseGitSourceConfig,
  async create(config: GitSourceConfig, _ctx: PluginContext): Promise<GitSource> {
    return new GitSource(config, config.cacheDir ?? await defaultGitCacheDir(config));
  },
});
