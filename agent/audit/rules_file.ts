/**
 * Reads audit rules from a file: an opa-compiled `policy.wasm` or a bundle (tar.gz) holding one,
 * as `opa build -t wasm` writes it and the policy sources deliver it.
 *
 * @module
 */
import { readLayout } from "../../plugins/policy_source/_layout.ts";
import { DEFAULT_LIMITS, gunzip, isGzip } from "../../plugins/policy_source/_safety.ts";
import { readTar } from "../../plugins/policy_source/_tar.ts";
import { AuditRules, AuditRulesError } from "./rules.ts";

/** Loads rules from `bytes` (wasm or bundle), naming `source` in every error. */
export async function loadRulesBytes(bytes: Uint8Array, source: string): Promise<AuditRules> {
  if (!isGzip(bytes)) return await AuditRules.load(bytes as Uint8Array<ArrayBuffer>, source);
  let wasm: Uint8Array;
  try {
    const entries = readTar(await gunzip(bytes, DEFAULT_LIMITS.maxTotalBytes), DEFAULT_LIMITS);
    const layout = readLayout(entries, DEFAULT_LIMITS.maxTotalBytes);
    if (!layout.opa) throw new Error("it has no wasm module (build with opa build -t wasm)");
    wasm = layout.opa.wasm;
  } catch (e) {
    if (e instanceof AuditRulesError) throw e;
    throw new AuditRulesError(`Cannot read audit rules bundle ${source}: ${(e as Error).message}`);
  }
  return await AuditRules.load(wasm as Uint8Array<ArrayBuffer>, `policy.wasm in ${source}`);
}

/** Loads rules from `file`. */
export async function loadRulesFile(file: string): Promise<AuditRules> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch (e) {
    throw new AuditRulesError(`Cannot read audit rules "${file}": ${(e as Error).message}`);
  }
  return await loadRulesBytes(bytes, `"${file}"`);
}
