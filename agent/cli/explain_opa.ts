/**
 * `explain --opa`: what the OPA issuance policy decides for the SPIFFE ID `explain` predicts, with
 * the same input the identity manager gives it (the task's uid, gid, pid and command taken from
 * the `process:*` labels). The policy is an opa-compiled `policy.wasm`, or a bundle holding one.
 *
 * @module
 */
import type { KernelPayloads, TaskContext } from "../../driver/payloads.ts";
import { parseDuration } from "../duration.ts";
import { checkIssuancePolicy, issuanceInput } from "../identity/issuance_policy.ts";
import { DEFAULT_ENTRYPOINT, type IssuanceInput, loadIssuanceHook } from "../opa/issuance_hook.ts";
import type { MatchResult } from "../policy/match.ts";
import { readLayout } from "../../plugins/policy_source/_layout.ts";
import { DEFAULT_LIMITS, gunzip, isGzip } from "../../plugins/policy_source/_safety.ts";
import { readTar } from "../../plugins/policy_source/_tar.ts";

/** What `--opa` adds to the report. */
export interface OpaReport {
  /** The file given, and the module inside it when it is a bundle. */
  from: string;
  entrypoint: string;
  /** False when no certificate would be issued (not intercepted, no SPIFFE ID). */
  consulted: boolean;
  allow?: boolean;
  reasons?: string[];
  input?: IssuanceInput;
}

/** Options of {@linkcode opaDecision}. */
export interface OpaOptions {
  file: string;
  dataFile?: string;
  entrypoint?: string;
  result: MatchResult;
  labels: readonly string[];
  payloads: KernelPayloads;
  trustDomain: string;
  defaultTtl: string;
}

async function readModule(file: string, dataFile: string | undefined) {
  const bytes = await Deno.readFile(file);
  let wasm: Uint8Array = bytes;
  let data: Record<string, unknown> | undefined;
  let from = file;
  if (isGzip(bytes)) {
    const entries = readTar(await gunzip(bytes, DEFAULT_LIMITS.maxTotalBytes), DEFAULT_LIMITS);
    const layout = readLayout(entries, DEFAULT_LIMITS.maxTotalBytes);
    if (!layout.opa) {
      throw new Error(`Cannot use bundle "${file}" with --opa: it has no wasm module`);
    }
    wasm = layout.opa.wasm;
    data = layout.opa.data;
    from = `${layout.opa.path} in ${file}`;
  }
  if (dataFile !== undefined) {
    const doc = JSON.parse(await Deno.readTextFile(dataFile));
    if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
      throw new Error(`Cannot use --opa-data "${dataFile}": it is not a JSON object`);
    }
    data = doc;
  }
  return { wasm, data, from };
}

/** The task as far as `process:*` labels tell it. */
export function taskFromLabels(labels: readonly string[]): Partial<TaskContext> {
  const get = (name: string) =>
    labels.find((l) => l.startsWith(`${name}=`))?.slice(name.length + 1);
  const num = (v: string | undefined) => v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
  const task: Partial<TaskContext> = {};
  const uid = num(get("process:uid")), gid = num(get("process:gid")), pid = num(get("process:pid"));
  if (uid !== undefined) task.uid = uid;
  if (gid !== undefined) task.gid = gid;
  if (pid !== undefined) task.pid = pid;
  const name = get("process:name"), path = get("process:binary:path");
  if (name !== undefined) task.command_name = name;
  if (path !== undefined) task.command_path = path;
  return task;
}

/** Loads the policy and evaluates it for the predicted issuance. */
export async function opaDecision(o: OpaOptions): Promise<OpaReport> {
  const entrypoint = o.entrypoint ?? DEFAULT_ENTRYPOINT;
  let module;
  try {
    module = await readModule(o.file, o.dataFile);
  } catch (e) {
    throw new Error(`Cannot read --opa "${o.file}": ${(e as Error).message}`, { cause: e });
  }
  const hook = await loadIssuanceHook(module.wasm as Uint8Array<ArrayBuffer>, {
    entrypoint,
    data: module.data ?? {},
  });
  const r = o.result;
  if (!r.intercepted || !r.spiffeId || !r.policy) {
    return { from: module.from, entrypoint, consulted: false };
  }
  const facts = {
    decision: {
      spiffeId: r.spiffeId,
      dnsNames: r.dnsNames,
      ttlMs: parseDuration(r.ttl ?? o.defaultTtl),
      policyId: r.policy.id,
      ...(r.egress ? { egressId: r.egress.id } : {}),
    },
    task: taskFromLabels(o.labels),
    labels: o.labels,
    payloads: o.payloads,
    trustDomain: o.trustDomain,
  };
  const d = checkIssuancePolicy(hook, facts);
  return {
    from: module.from,
    entrypoint,
    consulted: true,
    allow: d.allow,
    reasons: d.reasons,
    input: issuanceInput(facts),
  };
}

/** The text section of the report. */
export function opaText(r: OpaReport): string {
  const out = [`OPA issuance policy (${r.entrypoint}, ${r.from})`];
  if (!r.consulted) {
    out.push("  not consulted: no certificate is issued for this connection");
    return out.join("\n");
  }
  out.push(
    `  decision         ${
      r.allow ? "allow" : "DENY: the agent would answer with a refusal certificate"
    }`,
  );
  for (const why of r.reasons ?? []) out.push(`    reason         ${why}`);
  out.push(`  input            ${JSON.stringify(r.input)}`);
  return out.join("\n");
}
