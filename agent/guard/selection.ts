/**
 * Which runtime policy applies to a process, and by what key the kernel finds it.
 *
 * The key: a policy whose selectors use only container- or unit-level labels (`docker:`,
 * `containerd:`, `k8s:`, `kubernetes:`, `systemd:`) is keyed by the process's cgroup (v2 id):
 * everything in that cgroup and below is confined, new processes included, with no window.
 * Any other policy (process labels) is keyed by the process's task storage; children inherit it
 * at fork (lsm/task_alloc) and keep it across exec. A policy selecting only on
 * `process:binary:path` also binds at exec in-kernel, so such a program is confined from its
 * first instruction rather than from the agent's next sweep.
 *
 * Among matching policies the most specific wins (most keys in the matching selector map), then
 * the first by file and item — the same tie rule as the certificate policies.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { compareSources, type PolicySource, type SelectorEntries } from "../policy/source.ts";
import { resolveRuntime, type RuntimeRules } from "../policy/runtime.ts";
import { compileRuleset, type KernelRuleset, type PathFs, REAL_FS } from "./compile.ts";

/** Label prefixes that describe a whole cgroup (container, pod, unit), not one process. */
export const CGROUP_LABEL_PREFIXES = ["docker:", "containerd:", "k8s:", "kubernetes:", "systemd:"];

/** One policy with a `runtime:` section, compiled. */
export interface RuntimePolicy {
  /** `file#item`, for people: it moves when a policy above is added or removed. */
  ref: string;
  /**
   * What the kernel rule set id is keyed on: source, file, a digest of the selectors (what the
   * policy selects, not its rules) and the occurrence among that file's policies with the same
   * selectors. It stays put when other policies come or go, and when this one's rules change.
   */
  key: string;
  file: string;
  item: number;
  line?: number;
  /** Source id when delivered by a policy source (not a plain file). */
  source?: string;
  selectors: SelectorEntries[];
  workloadID: string;
  rules: RuntimeRules;
  kernel: KernelRuleset;
  target: "cgroup" | "task";
  /** Executables that bind this policy at exec (process:binary:path-only selectors). */
  binds: string[];
}

/** The key kind a policy's selectors call for. */
export function targetOf(selectors: readonly SelectorEntries[]): "cgroup" | "task" {
  const names = selectors.flatMap((m) => m.map(([name]) => name));
  if (names.length === 0) return "task";
  return names.every((n) => CGROUP_LABEL_PREFIXES.some((p) => n.startsWith(p))) ? "cgroup" : "task";
}

function binds(selectors: readonly SelectorEntries[], fs: PathFs): string[] {
  const out: string[] = [];
  for (const map of selectors) {
    if (map.length !== 1 || map[0]![0] !== "process:binary:path") continue;
    for (const v of map[0]![1]) {
      if (v.startsWith("/")) out.push(fs.realPath(v) ?? v);
    }
  }
  return [...new Set(out)];
}

/** Selectors in a canonical order: names, values and maps sorted (order does not change a match). */
function selectorDigest(selectors: readonly SelectorEntries[]): string {
  const maps = selectors.map((m) =>
    JSON.stringify(
      m.map(([n, v]) => [n, [...v].sort()] as const).sort((a, b) => a[0] < b[0] ? -1 : 1),
    )
  ).sort();
  return createHash("sha256").update(JSON.stringify(maps)).digest("hex").slice(0, 16);
}

/** The policies with a `runtime:` section, in file/item order, compiled. */
export function runtimePolicies(
  sources: readonly PolicySource[],
  fs: PathFs = REAL_FS,
): RuntimePolicy[] {
  /** Policies seen so far per selector key, for the occurrence index. */
  const seen = new Map<string, number>();
  return [...sources].sort(compareSources).flatMap((s) => {
    const doc = s.policy.runtime;
    if (!doc) return [];
    const rules = resolveRuntime(doc);
    const src = (s as { source?: unknown }).source;
    const base = JSON.stringify([
      typeof src === "string" ? src : "",
      s.file,
      selectorDigest(s.policy.selectors),
    ]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    const p: RuntimePolicy = {
      ref: `${s.file}#${s.item}`,
      key: `${base}#${n}`,
      file: s.file,
      item: s.item,
      selectors: s.policy.selectors,
      workloadID: s.policy.certificate.workloadID,
      rules,
      kernel: compileRuleset(rules, fs),
      target: targetOf(s.policy.selectors),
      binds: binds(s.policy.selectors, fs),
    };
    if (s.line !== undefined) p.line = s.line;
    if (typeof src === "string") p.source = src;
    return [p];
  });
}

/** Why a policy matched: the selector map and the labels that satisfied it. */
export interface Selection {
  policy: RuntimePolicy;
  /** Index of the matching selector map. */
  map: number;
  /** `name=value` labels that satisfied the map. */
  matched: string[];
  /** Other matching policies that lost, and why. */
  lost: { ref: string; why: string }[];
}

function matchMap(map: SelectorEntries, labels: ReadonlySet<string>): string[] | undefined {
  const matched: string[] = [];
  for (const [name, values] of map) {
    const hit = values.find((v) => labels.has(`${name}=${v}`));
    if (hit === undefined) return undefined;
    matched.push(`${name}=${hit}`);
  }
  return matched;
}

/**
 * The runtime policy for a process with `labels`, or undefined.
 *
 * @example
 * ```ts
 * import { selectPolicy } from "./selection.ts";
 * selectPolicy([], ["process:name=nginx"]); // undefined
 * ```
 */
export function selectPolicy(
  policies: readonly RuntimePolicy[],
  labels: Iterable<string>,
): Selection | undefined {
  const set = new Set(labels);
  const hits: { p: RuntimePolicy; map: number; matched: string[] }[] = [];
  for (const p of policies) {
    let best: { map: number; matched: string[] } | undefined;
    p.selectors.forEach((m, i) => {
      const matched = matchMap(m, set);
      if (matched && (!best || matched.length > best.matched.length)) best = { map: i, matched };
    });
    if (best) hits.push({ p, ...best });
  }
  if (!hits.length) return undefined;
  // Stable sort: most specific first, then file/item order (the input order).
  hits.sort((a, b) => b.matched.length - a.matched.length);
  const [win, ...rest] = hits;
  return {
    policy: win!.p,
    map: win!.map,
    matched: win!.matched,
    lost: rest.map((h) => ({
      ref: h.p.ref,
      why: h.matched.length < win!.matched.length
        ? `less specific (${h.matched.length} < ${win!.matched.length} labels)`
        : `same specificity, later than ${win!.p.ref}`,
    })),
  };
}

/** The cgroup v2 of `pid`: its path, level and id (the directory's inode), or undefined. */
export function cgroupOf(
  pid: number,
  procRoot = "/proc",
  cgroupRoot = "/sys/fs/cgroup",
): { path: string; level: number; id: bigint } | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${procRoot}/${pid}/cgroup`);
  } catch {
    return undefined;
  }
  const line = text.split("\n").find((l) => l.startsWith("0::"));
  if (!line) return undefined;
  const path = line.slice(3).trim();
  try {
    const ino = Deno.statSync(`${cgroupRoot}${path === "/" ? "" : path}`).ino;
    if (ino === null) return undefined;
    const level = path === "/" ? 0 : path.split("/").length - 1;
    return { path, level, id: BigInt(ino) };
  } catch {
    return undefined;
  }
}
