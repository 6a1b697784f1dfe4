/**
 * Real git repositories for policy source tests: a bare "remote" and a working clone that commits
 * (optionally SSH-signed), tags and force-pushes with the git CLI. Everything lives in a temporary
 * directory; the user's git config is not read.
 *
 * @module
 */
import { join } from "node:path";

const ENV = {
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_AUTHOR_NAME: "Policy Author",
  GIT_AUTHOR_EMAIL: "author@example.com",
  GIT_COMMITTER_NAME: "Policy Author",
  GIT_COMMITTER_EMAIL: "author@example.com",
};

/** Runs a command; throws with its stderr when it fails. */
export async function sh(cmd: string, args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    ...(cwd ? { cwd } : {}),
    env: ENV,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout).trim();
}

/** An SSH signing key and an allowed-signers file naming it. */
export interface SshSigner {
  keyFile: string;
  allowedSignersFile: string;
}

/** Generates an ed25519 key with ssh-keygen and an allowed-signers file for it. */
export async function sshSigner(dir: string, name: string): Promise<SshSigner> {
  const keyFile = join(dir, name);
  await sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", keyFile]);
  const pub = await Deno.readTextFile(`${keyFile}.pub`);
  const allowedSignersFile = join(dir, `${name}.allowed`);
  await Deno.writeTextFile(allowedSignersFile, `author@example.com ${pub}`);
  return { keyFile, allowedSignersFile };
}

/** A bare remote and a working clone pushing to it. */
export class GitRemote {
  readonly root: string;
  readonly bare: string;
  readonly work: string;

  private constructor(root: string) {
    this.root = root;
    this.bare = join(root, "remote.git");
    this.work = join(root, "work");
  }

  /** Creates both repositories (branch `main`). */
  static async create(): Promise<GitRemote> {
    const r = new GitRemote(await Deno.makeTempDir({ prefix: "camblet-git-" }));
    await sh("git", ["init", "-q", "--bare", "-b", "main", r.bare]);
    await sh("git", ["init", "-q", "-b", "main", r.work]);
    await r.git("remote", "add", "origin", r.bare);
    return r;
  }

  /** `file://` URL of the remote. */
  get url(): string {
    return `file://${this.bare}`;
  }

  /** Runs git in the working clone. */
  git(...args: string[]): Promise<string> {
    return sh("git", args, this.work);
  }

  /** Writes (or, with `null`, deletes) files, commits and returns the commit id. */
  async commit(
    files: Record<string, string | Uint8Array | null>,
    message: string,
    options: { sign?: SshSigner; push?: boolean } = {},
  ): Promise<string> {
    for (const [path, text] of Object.entries(files)) {
      const full = join(this.work, path);
      if (text === null) await Deno.remove(full);
      else {
        await Deno.mkdir(join(full, ".."), { recursive: true });
        await Deno.writeFile(
          full,
          typeof text === "string" ? new TextEncoder().encode(text) : text,
        );
      }
    }
    await this.git("add", "-A");
    const sign = options.sign
      ? ["-c", "gpg.format=ssh", "-c", `user.signingkey=${options.sign.keyFile}`]
      : [];
    await this.git(
      ...sign,
      "commit",
      "-q",
      "--allow-empty",
      ...(options.sign ? ["-S"] : []),
      "-m",
      message,
    );
    const sha = await this.git("rev-parse", "HEAD");
    if (options.push ?? true) await this.git("push", "-q", "--force", "origin", "HEAD:main");
    return sha;
  }

  /** Removes everything. */
  async remove(): Promise<void> {
    await Deno.remove(this.root, { recursive: true });
  }
}
