/**
 * A merged, validated, compiled policy set, as {@linkcode PolicySources} emits it.
 *
 * @module
 */
import type { KernelPayloads } from "../../driver/payloads.ts";
import type { Problem } from "../errors.ts";
import type { IssuanceHook } from "../opa/issuance_hook.ts";
import type { IssuanceInForce, SourcedProvenance } from "./compile_set.ts";
import type { PolicySource } from "../policy/source.ts";
import type { LoadedRuleSet } from "../audit/delivered_rules.ts";

/** Syscall audit rules a source delivered (its `audit/` directory), loaded. */
export interface AuditRulesInForce extends LoadedRuleSet {
  source: string;
  revision: string;
}

/** What the daemon pushes to the kernel and signs by. */
export interface PolicySnapshot {
  /** 1 for the first set; +1 for every change. */
  revision: number;
  at: string;
  payloads: KernelPayloads;
  /** By compiled policy id and egress id. */
  provenance: Record<string, SourcedProvenance>;
  warnings: Problem[];
  /** The OPA issuance policy, when a source delivers one. */
  issuanceHook?: IssuanceHook;
  issuance?: IssuanceInForce;
  /** Source id → revision in force. */
  sources: Record<string, string>;
  /** File labels read, in order (plain paths for `--policies-path`). */
  files: { policies: string[]; services: string[] };
  /** The parsed policies (the runtime guard reads their `runtime:` sections). */
  policies?: PolicySource[];
  /** The audit rules delivered by a source, if one does (and the audit is on). */
  audit?: AuditRulesInForce;
}
