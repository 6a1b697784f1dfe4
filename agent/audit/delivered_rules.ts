/**
 * Audit rule sets as the daemon gets them: the files of a policy source's `audit/` directory, or
 * of the `agent.audit.rules` path (a directory of Rego, a `policy.wasm` or an opa bundle). Rego is
 * compiled with the real `opa build -t wasm`; every refusal names where the rules came from, the
 * file when one is at fault, and why.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { AuditRules, AuditRulesError, FILTER_ENTRYPOINT, VIOLATIONS_ENTRYPOINT } from "./rules.ts";
import { loadRulesBytes } from "./rules_file.ts";

/** One rule file: its path in the source (or below the rules directory) and its bytes. */
export interface RuleFile {
  path: string;
  data: Uint8Array;
}

/** Loaded rules and what identifies them. */
export interface LoadedRuleSet {
  rules: AuditRules;
  /** `sha256:<16 hex>` of the files (paths and bytes): the same files, the same id. */
  id: string;
  /** `rego`, `wasm` or `bundle`. */
  kind: "rego" | "wasm" | "bundle";
  /** Files the set was built from. */
  files: number;
}

/** Content id of `files`. */
export function ruleSetId(files: readonly RuleFile[]): string {
  const h = createHash("sha256");
  for (const f of [...files].sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0)) {
    h.update(f.path).update("\0").update(String(f.data.byteLength)).update("\0").update(f.data);
  }
  return `sha256:${h.digest("hex").slice(0, 16)}`;
}

const isTest = (p: string) => p.endsWith("_test.rego");

/** Longest `opa build` may take, ms. */
export const COMPILE_TIMEOUT_MS = 120_000;

/** Compiles `rego` files (paths relative) into a wasm bundle with `opa`. */
async function compileRego(rego: readonly RuleFile[], where: string, opa: string, hint: string) {
  const tmp = await Deno.makeTempDir({ prefix: "camblet-audit-rules-" });
  try {
    for (const f of rego) {
      const rel = f.path.split("/").filter((s) => s !== "" && s !== "." && s !== "..").join("/");
      const to = `${tmp}/src/${rel}`;
      await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
      await Deno.writeFile(to, f.data, { mode: 0o600 });
    }
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command(opa, {
        args: [
          "build",
          "-t",
          "wasm",
          "-e",
          VIOLATIONS_ENTRYPOINT,
          "-e",
          FILTER_ENTRYPOINT,
          "-o",
          `${tmp}/bundle.tar.gz`,
          `${tmp}/src`,
        ],
        stdout: "piped",
        stderr: "piped",
        stdin: "null",
        // A hung compiler must not hold reloads (they are serialized) forever.
        signal: AbortSignal.timeout(COMPILE_TIMEOUT_MS),
      }).output();
    } catch (e) {
      if ((e as Error).name === "TimeoutError" || (e as Error).name === "AbortError") {
        throw new AuditRulesError(
          `Cannot compile the audit rules of ${where}: "${opa} build" did not finish within ${
            COMPILE_TIMEOUT_MS / 1000
          } s`,
        );
      }
      throw new AuditRulesError(
        `Cannot compile the audit rules of ${where}: cannot run "${opa}" (${
          (e as Error).message
        }); ${hint}, or deliver a pre-built policy.wasm or bundle`,
      );
    }
    if (!out.success) {
      // opa names the files by their temporary path: name them as the source does.
      const dec = new TextDecoder();
      const why = (dec.decode(out.stderr) + dec.decode(out.stdout)).replaceAll(`${tmp}/src/`, "")
        .trim();
      throw new AuditRulesError(
        `Cannot compile the audit rules of ${where} with opa build: ${why}`,
      );
    }
    return await Deno.readFile(`${tmp}/bundle.tar.gz`);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

/**
 * Loads a rule set from its files: one `*.wasm` or one `*.tar.gz` (pre-built), else the `.rego`
 * files (tests `*_test.rego` left out) compiled with `opa`. Throws {@linkcode AuditRulesError}.
 */
export async function loadRuleFiles(
  files: readonly RuleFile[],
  where: string,
  opa = "opa",
  /** How to name another opa, in the error when this one cannot run. */
  opaHint = "set agent.audit.opa",
): Promise<LoadedRuleSet> {
  const id = ruleSetId(files);
  const wasm = files.filter((f) => f.path.endsWith(".wasm"));
  const bundles = files.filter((f) => f.path.endsWith(".tar.gz"));
  const rego = files.filter((f) => f.path.endsWith(".rego") && !isTest(f.path));
  const built = [...wasm, ...bundles];
  if (built.length > 1) {
    throw new AuditRulesError(
      `Cannot use the audit rules of ${where}: more than one pre-built module (${
        built.map((f) => f.path).join(", ")
      }); deliver one policy.wasm or bundle`,
    );
  }
  if (built.length === 1) {
    const f = built[0]!;
    const rules = f.path.endsWith(".wasm")
      ? await AuditRules.load(f.data as Uint8Array<ArrayBuffer>, `${where}: ${f.path}`)
      : await loadRulesBytes(f.data, `${where}: ${f.path}`);
    return { rules, id, kind: wasm.length ? "wasm" : "bundle", files: files.length };
  }
  if (rego.length === 0) {
    throw new AuditRulesError(
      `Cannot use the audit rules of ${where}: no .rego files, policy.wasm or bundle (tar.gz)`,
    );
  }
  const bundle = await compileRego(rego, where, opa, opaHint);
  const rules = await loadRulesBytes(bundle, `${where} (compiled)`);
  return { rules, id, kind: "rego", files: rego.length };
}

async function walk(dir: string, rel: string, out: RuleFile[]): Promise<void> {
  const entries = [];
  for await (const e of Deno.readDir(`${dir}/${rel}`)) entries.push(e);
  entries.sort((a, b) => a.name < b.name ? -1 : 1);
  for (const e of entries) {
    if (e.name.startsWith(".")) continue;
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) await walk(dir, p, out);
    else if (e.isFile && /\.(rego|wasm|tar\.gz)$/.test(e.name)) {
      out.push({ path: p, data: await Deno.readFile(`${dir}/${p}`) });
    }
  }
}

/** The rule files at `path` (a directory, or one wasm/bundle file). */
export async function readRulePath(path: string): Promise<RuleFile[]> {
  try {
    const info = await Deno.stat(path);
    if (!info.isDirectory) {
      return [{ path: path.slice(path.lastIndexOf("/") + 1), data: await Deno.readFile(path) }];
    }
    const out: RuleFile[] = [];
    await walk(path, "", out);
    return out;
  } catch (e) {
    throw new AuditRulesError(`Cannot read audit rules "${path}": ${(e as Error).message}`);
  }
}
