/**
 * The layout shared by Git trees and OPA bundles: `policies/**` and `services/**` hold policy and
 * service files (`*.yaml`, `*.yml`, `*.json`, recursively), an optional `policy.wasm` (or the one
 * wasm module `.manifest` names) with `data.json` is the OPA issuance policy, and `.manifest`
 * carries the revision. `audit/**` holds syscall audit rules (Rego, or a pre-built wasm or
 * bundle), delivered as bytes for the agent to compile. Everything else (READMEs) is ignored.
 *
 * @module
 */
import { isSourceFileName } from "./_names.ts";
import { ByteBudget, decodeUtf8, RefusedContentError } from "./_safety.ts";
import type {
  DeliveredAudit,
  DeliveredFile,
  DeliveredKind,
  DeliveredOpa,
  SourceProblem,
} from "./types.ts";

/** One file of a tree or archive, path relative to the layout root. */
export interface LayoutEntry {
  path: string;
  data: Uint8Array;
}

/** What a layout holds. */
export interface Layout {
  files: DeliveredFile[];
  opa?: DeliveredOpa;
  audit?: DeliveredAudit;
  /** `.manifest` `revision`, if any. */
  revision?: string;
  warnings: SourceProblem[];
}

interface Manifest {
  revision?: unknown;
  wasm?: { entrypoint?: unknown; module?: unknown }[];
}

function readJson(path: string, data: Uint8Array): unknown {
  try {
    return JSON.parse(decodeUtf8(path, data));
  } catch (e) {
    if (e instanceof RefusedContentError) throw e;
    throw new RefusedContentError(`cannot read as JSON: ${(e as Error).message}`, { file: path });
  }
}

/** Whether `path` is one of the audit rule files (`audit/…`, no dot segments). */
export function isAuditPath(path: string): boolean {
  const segments = path.split("/");
  return segments[0] === "audit" && segments.length > 1 && !segments.some((s) => s.startsWith("."));
}

function kindOf(path: string): DeliveredKind | undefined {
  const segments = path.split("/");
  const top = segments[0];
  if ((top !== "policies" && top !== "services") || segments.length < 2) return undefined;
  if (segments.some((s) => s.startsWith("."))) return undefined;
  return isSourceFileName(segments.at(-1)!) ? top : undefined;
}

/**
 * Sorts out `entries` (any order). Throws {@linkcode RefusedContentError} for non-UTF-8 text, a
 * bad manifest or `data.json`, or more than one wasm module.
 */
export function readLayout(entries: readonly LayoutEntry[], maxTotalBytes: number): Layout {
  const byPath = new Map(entries.map((e) => [e.path, e]));
  const warnings: SourceProblem[] = [];
  const budget = new ByteBudget(maxTotalBytes, "the set of files");
  const files: DeliveredFile[] = [];
  const audit: DeliveredAudit["files"] = [];
  for (const e of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    budget.take(e.data.byteLength, e.path);
    const kind = kindOf(e.path);
    if (kind) files.push({ kind, path: e.path, text: decodeUtf8(e.path, e.data) });
    else if (isAuditPath(e.path)) audit.push({ path: e.path, data: e.data });
    else if (/(^|\/)data\.ya?ml$/.test(e.path)) {
      warnings.push({ file: e.path, message: "YAML data files are not read; use data.json" });
    }
  }
  const out: Layout = { files, warnings };
  if (audit.length) out.audit = { files: audit };
  const manifestEntry = byPath.get(".manifest");
  let manifest: Manifest = {};
  if (manifestEntry) {
    const m = readJson(".manifest", manifestEntry.data);
    if (m === null || typeof m !== "object" || Array.isArray(m)) {
      throw new RefusedContentError("the manifest is not a JSON object", { file: ".manifest" });
    }
    manifest = m as Manifest;
    if (manifest.revision !== undefined && typeof manifest.revision !== "string") {
      throw new RefusedContentError("the manifest revision is not a string", { file: ".manifest" });
    }
    if (manifest.revision) out.revision = manifest.revision;
  }
  const declared = Array.isArray(manifest.wasm) ? manifest.wasm : [];
  const modules = new Set(
    declared.map((w) => typeof w.module === "string" ? w.module.replace(/^\//, "") : ""),
  );
  modules.delete("");
  // The audit rules' own module is theirs, not a second issuance policy.
  for (const m of modules) if (isAuditPath(m)) modules.delete(m);
  if (byPath.has("policy.wasm")) modules.add("policy.wasm");
  if (modules.size > 1) {
    throw new RefusedContentError(
      `more than one wasm module (${[...modules].join(", ")}); one issuance policy is supported`,
    );
  }
  const [module] = modules;
  if (module !== undefined) {
    const wasm = byPath.get(module);
    if (!wasm) {
      throw new RefusedContentError(`the manifest names wasm module ${module}, which is missing`, {
        file: ".manifest",
      });
    }
    const opa: DeliveredOpa = { path: module, wasm: wasm.data };
    const entrypoints = declared
      .filter((w) => typeof w.module === "string" && w.module.replace(/^\//, "") === module)
      .map((w) => w.entrypoint).filter((e): e is string => typeof e === "string");
    if (entrypoints.length) opa.entrypoints = entrypoints;
    const data = byPath.get("data.json");
    if (data) {
      const doc = readJson("data.json", data.data);
      if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
        throw new RefusedContentError("data.json is not a JSON object", { file: "data.json" });
      }
      opa.data = doc as Record<string, unknown>;
    }
    out.opa = opa;
  }
  return out;
}
