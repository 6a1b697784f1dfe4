/**
 * What `camblet-agent explain runtime` does (agent/cli/explain_runtime.ts registers it): kept
 * apart so that attestation, the policy loader and the guard's selection load only when it runs.
 *
 * @module
 */
import type { Command } from "commander";
import { createAttestation, taskContextFromProc } from "../attestation/mod.ts";
import { formatProblem } from "../errors.ts";
import { describeRuntime } from "../policy/runtime.ts";
import { runtimePolicies, type Selection, selectPolicy } from "../guard/selection.ts";
import { cgroupOf } from "../guard/selection.ts";
import { readLabelsFile } from "./explain.ts";
import { loadPayloads } from "./load_payloads.ts";
import { outputFormat, resolveConfig, usageError } from "./options.ts";
import type { ExplainRuntimeOptions } from "./explain_runtime.ts";

/** The explanation as data (the JSON output). */
export function runtimeExplanation(sel: Selection | undefined, labels: string[], pid?: number) {
  if (!sel) return { labels, applies: false as const };
  const p = sel.policy;
  const cg = pid !== undefined && p.target === "cgroup" ? cgroupOf(pid) : undefined;
  return {
    labels,
    applies: true as const,
    policy: { file: p.file, item: p.item, ...(p.line !== undefined ? { line: p.line } : {}) },
    matched: { selectorMap: sel.map, labels: sel.matched },
    key: p.target === "cgroup"
      ? {
        kind: "cgroup",
        why: "its selectors use only container/unit labels: the whole cgroup is confined",
        ...(cg ? { cgroup: cg.path, cgroupId: String(cg.id) } : {}),
      }
      : {
        kind: "task",
        why: "process labels: keyed by task storage, inherited by children, kept across exec" +
          (p.binds.length ? `; bound in-kernel at exec of ${p.binds.join(", ")}` : ""),
      },
    mode: p.rules.mode,
    rules: describeRuntime(p.rules),
    kernelPaths: p.kernel.paths.map((k) => ({ path: k.path, from: k.from })),
    notes: p.kernel.notes,
    lost: sel.lost,
  };
}

/** Runs `explain runtime` with its own options `own` and those of `cmd`. */
export async function explainRuntime(own: ExplainRuntimeOptions, cmd: Command): Promise<void> {
  // `explain` declares --label, --labels-file and --output too and parses them first.
  const opts = { ...cmd.optsWithGlobals<ExplainRuntimeOptions>(), ...own };
  const output = outputFormat(cmd, opts.output, ["text", "json"] as const);
  const labels = [...(opts.label ?? [])];
  if (opts.labelsFile !== undefined) labels.push(...await readLabelsFile(opts.labelsFile));
  let pid: number | undefined;
  const loaded = await resolveConfig(cmd);
  if (opts.pid !== undefined) {
    pid = Number(opts.pid);
    if (!Number.isInteger(pid) || pid <= 0) {
      throw usageError(cmd, `--pid must be a positive integer, got "${opts.pid}"`);
    }
    const task = taskContextFromProc(pid);
    if (!task) throw new Error(`Cannot explain pid ${pid}: no such process`);
    const attestation = await createAttestation(loaded.config);
    try {
      labels.push(...await attestation.augmentLabels(task, AbortSignal.timeout(5000)));
    } finally {
      await attestation.dispose?.();
    }
  } else if (!labels.length) {
    throw usageError(cmd, "give --pid, or labels with --label or --labels-file");
  }
  const { sources, warnings } = await loadPayloads(loaded);
  for (const w of warnings) console.error(`warning: ${formatProblem(w)}`);
  const policies = runtimePolicies(sources.policies);
  const x = runtimeExplanation(selectPolicy(policies, labels), labels, pid);
  if (output === "json") {
    console.log(JSON.stringify(x, null, 2));
    return;
  }
  const who = pid !== undefined ? `pid ${pid}` : "these labels";
  if (!x.applies) {
    console.log(
      `No runtime policy applies to ${who}: it runs unconfined by the runtime guard ` +
        `(${policies.length} runtime polic${policies.length === 1 ? "y" : "ies"} loaded)`,
    );
    return;
  }
  const out = [
    `Runtime policy for ${who}: ${x.policy.file} item ${x.policy.item}` +
    (x.policy.line !== undefined ? ` (line ${x.policy.line})` : ""),
    `  matched          selector map ${x.matched.selectorMap}: ${x.matched.labels.join(", ")}`,
    `  keyed by         ${x.key.kind}${"cgroup" in x.key ? ` ${x.key.cgroup}` : ""}: ${x.key.why}`,
    `  mode             ${x.mode}`,
    "  rules",
    ...x.rules.slice(1).map((r) => `    ${r}`),
  ];
  if (x.kernelPaths.length) {
    out.push("  kernel paths (canonical)");
    for (const k of x.kernelPaths) out.push(`    ${k.path}  <- ${k.from.join("; ")}`);
  }
  for (const n of x.notes) out.push(`  note: ${n}`);
  for (const l of x.lost) out.push(`  lost: ${l.ref}: ${l.why}`);
  console.log(out.join("\n"));
}
