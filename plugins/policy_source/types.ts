/**
 * The policy source plugin kind: where policies, services and an optional OPA issuance policy come
 * from (files, Git, HTTP bundles). A source only fetches and unpacks, safely and within limits; it
 * never parses policies. The agent (agent/sources/) parses every delivered file with the one
 * policy parser, merges all sources, compiles, and keeps the last good set when a source fails.
 *
 * @module
 */
import type { PluginInstance } from "../types.ts";

/** What a delivered file holds. */
export type DeliveredKind = "policies" | "services";

/** One policy or service file of a delivery. */
export interface DeliveredFile {
  kind: DeliveredKind;
  /**
   * Where the file is in the source: the path as configured for the `file` source, the path
   * inside the repository or bundle (`policies/web.yaml`) for the others.
   */
  path: string;
  /** The file's text (already checked to be UTF-8). */
  text: string;
}

/** An opa-compiled issuance policy delivered with the set (`policy.wasm` and `data.json`). */
export interface DeliveredOpa {
  /** Where the module is in the source, e.g. `policy.wasm`. */
  path: string;
  wasm: Uint8Array;
  /** The OPA `data` document (a bundle's `data.json`), if any. */
  data?: Record<string, unknown>;
  /** Entrypoints the bundle's manifest declares for the module, if it says. */
  entrypoints?: string[];
}

/**
 * Syscall audit rules delivered with the set: every file below `audit/` (Rego sources, or a
 * pre-built `policy.wasm` / bundle). The agent compiles and checks them (agent/audit).
 */
export interface DeliveredAudit {
  /** Paths inside the source (`audit/rules.rego`), in path order. */
  files: { path: string; data: Uint8Array }[];
}

/** A problem found in a source, relative to it (the agent adds which source). */
export interface SourceProblem {
  /** Path inside the source, when the problem is about one file. */
  file?: string;
  /** 1-based line, when known. */
  line?: number;
  message: string;
}

/** A complete, unpacked set of files at one revision. */
export interface PolicyDelivery {
  /** A git commit id, a bundle's manifest revision (else its ETag or digest), or a digest of the files. */
  revision: string;
  /** Every policy and service file, in a stable order (path order). */
  files: DeliveredFile[];
  opa?: DeliveredOpa;
  /** Audit rules (`audit/**`), if the source holds any. */
  audit?: DeliveredAudit;
  /** Non-fatal findings, e.g. files skipped. */
  warnings: SourceProblem[];
}

/** The result of one check of a source. */
export type SourceCheck =
  | { kind: "delivery"; delivery: PolicyDelivery }
  /** Nothing new since the last delivery (HTTP 304, same commit, same file contents). */
  | { kind: "unchanged"; revision: string }
  /** The source could not be read, or what it holds was refused; every reason is listed. */
  | { kind: "failure"; problems: SourceProblem[] };

/**
 * A policy source.
 *
 * Contract:
 * - `check` never rejects: a failure is a `failure` result with its reasons. It honours `signal`,
 *   is bounded in time and size, and never returns part of a revision: all its files or nothing.
 * - The first successful `check` is a `delivery`; later ones are `unchanged` until the content
 *   changes. A source may deliver the same revision again (e.g. after a restart).
 * - `watch` starts the source's own schedule (file events, polling with jitter and backoff) and
 *   reports every check to `onCheck` until `dispose`. Checks never overlap.
 * - Everything delivered is untrusted input: paths are relative and free of `..`, links are not
 *   followed out of the source, sizes and counts are within the configured limits.
 */
export interface PolicySourceInstance extends PluginInstance {
  /** The plugin name: `file`, `git`, `http`. */
  readonly type: string;
  /** Where it reads from, for status lines; never contains secrets. */
  readonly location: string;
  /** Checks once now. */
  check(signal?: AbortSignal): Promise<SourceCheck>;
  /** Starts the source's schedule (call once, after the first `check`). */
  watch(onCheck: (result: SourceCheck) => void): void;
  /**
   * Told when the agent put `revision` in force (e.g. the git source keeps it in its cache to
   * start from when the remote is down). Must not throw.
   */
  accepted?(revision: string): Promise<void> | void;
}
