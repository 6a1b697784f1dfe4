/**
 * One source's delivery → validated policy and service items, with the agent's one parser
 * (agent/policy/parse_policy.ts, parse_service.ts). Items get a file label that is unique across
 * sources (`git(corp):policies/web.yaml`; plain paths for the implicit `--policies-path` source),
 * and every problem names its source, file, line, item and field.
 *
 * @module
 */
import type { Problem } from "../errors.ts";
import { parsePolicyFile } from "../policy/parse_policy.ts";
import { parseServiceFile } from "../policy/parse_service.ts";
import type { PolicySource, ServiceSource } from "../policy/source.ts";
import type { PolicyDelivery, SourceProblem } from "../../plugins/policy_source/types.ts";
import type { SourceSpec } from "./spec.ts";

/** A delivery's items. */
export interface ParsedDelivery {
  revision: string;
  policies: PolicySource[];
  services: ServiceSource[];
  /** File labels delivered, in order. */
  files: { policies: string[]; services: string[] };
  /** Every problem; none of the items may be used when there is one. */
  problems: Problem[];
  warnings: Problem[];
}

/** Where a file label points: the source and the path inside it. */
export interface LabelTarget {
  source: string;
  file: string;
}

/** The compile-time file label of `path` in source `spec`. */
export function fileLabel(spec: Pick<SourceSpec, "id" | "implicit">, path: string): string {
  return spec.implicit ? path : `${spec.id}:${path}`;
}

/** A source-relative problem → an agent problem naming the source (not for the implicit one). */
export function sourceProblem(
  spec: Pick<SourceSpec, "id" | "implicit">,
  p: SourceProblem,
): Problem {
  const out: Problem = { message: p.message };
  if (!spec.implicit) out.source = spec.id;
  if (p.file !== undefined) out.file = p.file;
  if (p.line !== undefined) out.line = p.line;
  return out;
}

/** Re-locates a problem found under a file label to its source and path. */
export function relocate(p: Problem, labels: ReadonlyMap<string, LabelTarget>): Problem {
  const target = p.file === undefined ? undefined : labels.get(p.file);
  if (!target || target.source === "") return p;
  return { ...p, source: target.source, file: target.file };
}

/** Gives the event loop a turn (timers, I/O, worker messages): the end of one slice of work. */
export function yieldTurn(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

/**
 * {@linkcode parseDelivery} in slices of one file, yielding between them so that the thread
 * keeps answering (the kernel, the control socket) while a large set is parsed.
 */
export async function parseDeliverySliced(
  spec: Pick<SourceSpec, "id" | "implicit">,
  delivery: PolicyDelivery,
  trustDomain: string,
  labels: Map<string, LabelTarget>,
): Promise<ParsedDelivery> {
  const parts: ParsedDelivery[] = [];
  for (const file of delivery.files) {
    await yieldTurn();
    parts.push(
      parseDelivery(spec, { ...delivery, files: [file], warnings: [] }, trustDomain, labels),
    );
  }
  const out = parseDelivery(spec, { ...delivery, files: [] }, trustDomain, labels);
  return {
    ...out,
    policies: out.policies.concat(...parts.map((p) => p.policies)),
    services: out.services.concat(...parts.map((p) => p.services)),
    files: {
      policies: out.files.policies.concat(...parts.map((p) => p.files.policies)),
      services: out.files.services.concat(...parts.map((p) => p.files.services)),
    },
    problems: out.problems.concat(...parts.map((p) => p.problems)),
  };
}

/** Parses every file of `delivery`; the label map is filled for {@linkcode relocate}. */
export function parseDelivery(
  spec: Pick<SourceSpec, "id" | "implicit">,
  delivery: PolicyDelivery,
  trustDomain: string,
  labels: Map<string, LabelTarget>,
): ParsedDelivery {
  const out: ParsedDelivery = {
    revision: delivery.revision,
    policies: [],
    services: [],
    files: { policies: [], services: [] },
    problems: [],
    warnings: delivery.warnings.map((w) => sourceProblem(spec, w)),
  };
  for (const f of delivery.files) {
    const label = fileLabel(spec, f.path);
    labels.set(label, { source: spec.implicit ? "" : spec.id, file: f.path });
    out.files[f.kind].push(label);
    if (f.kind === "policies") {
      const r = parsePolicyFile(label, f.text, { trustDomain });
      out.policies.push(...r.policies);
      out.problems.push(...r.problems.map((p) => relocate(p, labels)));
    } else {
      const r = parseServiceFile(label, f.text);
      out.services.push(...r.services);
      out.problems.push(...r.problems.map((p) => relocate(p, labels)));
    }
  }
  return out;
}
