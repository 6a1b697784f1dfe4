/**
 * Test helpers of the syscall audit: the default rules (policies/rego/audit) built with the real
 * `opa build -t wasm`, and why a native capture test cannot run here.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { opaBuildBundle } from "../peers/opa.ts";
import { peerPath } from "../peers/ensure_peer.ts";
import { FILTER_ENTRYPOINT, VIOLATIONS_ENTRYPOINT } from "../../agent/audit/rules.ts";

/** The default rules directory. */
export const RULES_DIR = new URL("../../policies/rego/audit", import.meta.url).pathname;

/** Why the opa peer is unusable, or "". */
export function opaMissing(): string {
  return existsSync(peerPath("opa"))
    ? ""
    : `the opa peer is not built (${peerPath("opa")}; deno task peers)`;
}

/** Why capture cannot run natively, or "". */
export function captureMissing(): string {
  if (Deno.uid() !== 0) return "needs root (CAP_BPF, CAP_PERFMON) to load tracepoint programs";
  if (Deno.build.arch !== "x86_64") return "the audit capture reads x86_64 syscall registers";
  return opaMissing();
}

/** `opa build -t wasm` of `dir` with both audit entrypoints: the bundle's bytes. */
export function buildRules(dir = RULES_DIR): Promise<Uint8Array> {
  return opaBuildBundle(dir, { entrypoints: [VIOLATIONS_ENTRYPOINT, FILTER_ENTRYPOINT] });
}
