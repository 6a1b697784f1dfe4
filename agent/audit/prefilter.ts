/**
 * The in-kernel prefilter compiled from the audit rules' `filter` declarations
 * (policies/rego/audit/README.md): each declaration becomes one filter group of
 * driver/bpf/audit_filter.ts — its syscalls, optionally path prefixes, and optionally a cgroup
 * scope (`containers: true`, or `workloads`: label selectors). Also what the kernel needs to
 * know about cgroups: the host's (non-container) cgroup ids, and a process's cgroup id for the
 * daemon's workload pushes.
 *
 * @module
 */
import { PREFIX_MAX, SYSCALLS } from "../../driver/bpf/audit_layout.ts";
import {
  type AuditFilter,
  type FilterGroup,
  filterGroups,
  filterOf,
} from "../../driver/bpf/audit_filter.ts";
import { cgroupV2Path, containerIdFromCgroup } from "../../plugins/attestor/_lib/cgroup.ts";
import { AuditRulesError } from "./rules_error.ts";

const FIELDS = new Set(["rule", "syscalls", "prefixes", "writes", "containers", "workloads"]);

/** One declaration as a filter group; throws naming the source, the rule and the field. */
function declGroup(d: unknown, i: number, source: string): FilterGroup {
  const where = `${source}: filter item ${i}`;
  if (typeof d !== "object" || d === null || Array.isArray(d)) {
    throw new AuditRulesError(`${where}: not an object`);
  }
  const o = d as Record<string, unknown>;
  const name = typeof o.rule === "string" ? `rule "${o.rule}"` : where;
  const fail = (field: string, why: string) =>
    new AuditRulesError(`${source}: ${name}: ${field} ${why}`);
  for (const k of Object.keys(o)) {
    if (!FIELDS.has(k)) throw fail(k, `is not a filter field (${[...FIELDS].join(", ")})`);
  }
  const sc = o.syscalls;
  if (!Array.isArray(sc) || sc.length === 0 || !sc.every((s) => typeof s === "string")) {
    throw fail("syscalls", "must be a non-empty list of names");
  }
  for (const s of sc as string[]) {
    if (!SYSCALLS.has(s)) {
      throw fail(`syscall "${s}"`, `is not captured (known: ${[...SYSCALLS.keys()].join(", ")})`);
    }
  }
  const g: FilterGroup = {
    rules: typeof o.rule === "string" ? [o.rule] : [],
    syscalls: sc as string[],
  };
  if (o.prefixes !== undefined) {
    const px = o.prefixes;
    if (!Array.isArray(px) || !px.every((p) => typeof p === "string" && p.startsWith("/"))) {
      throw fail("prefixes", "must be absolute paths");
    }
    for (const p of px as string[]) {
      const n = new TextEncoder().encode(p).length;
      if (n > PREFIX_MAX) {
        throw fail("prefixes", `has one of ${n} bytes (${p.slice(0, 40)}…): at most ${PREFIX_MAX}`);
      }
    }
    g.prefixes = px as string[];
  }
  if (o.writes !== undefined) {
    if (typeof o.writes !== "boolean") throw fail("writes", "must be true or false");
    if (o.writes) g.writes = true;
  }
  if (o.containers !== undefined) {
    if (typeof o.containers !== "boolean") throw fail("containers", "must be true or false");
    if (o.containers) g.containers = true;
  }
  if (o.workloads !== undefined) {
    if (g.containers) throw fail("workloads", "cannot be given with containers (pick one scope)");
    const w = o.workloads;
    if (!Array.isArray(w) || w.length === 0) {
      throw fail("workloads", 'must be a non-empty list of selectors (lists of "name=value")');
    }
    w.forEach((sel, j) => {
      if (
        !Array.isArray(sel) || !sel.every((l) => typeof l === "string" && l.indexOf("=") > 0)
      ) {
        throw fail(
          `workloads[${j}]`,
          `is ${JSON.stringify(sel)}, not a list of "name=value" labels`,
        );
      }
    });
    g.workloads = w as string[][];
  }
  return g;
}

/**
 * The prefilter of the rules' `filter` declarations: one group per declaration (identical ones
 * merged), and their union (`syscalls`, `pathFiltered`, `prefixes`). Nothing is written to the
 * kernel here, so a refused declaration leaves the filter in force as it was.
 */
export function compileFilter(decls: unknown, source: string): AuditFilter {
  if (!Array.isArray(decls)) {
    throw new AuditRulesError(`Cannot use audit rules from ${source}: filter is not a set`);
  }
  const groups = decls.map((d, i) => declGroup(d, i, source));
  try {
    return filterOf(filterGroups({ syscalls: [], pathFiltered: [], prefixes: [], groups }));
  } catch (e) {
    // A prefix too long for the kernel's key, named by the driver.
    throw new AuditRulesError(`${source}: ${(e as Error).message}`);
  }
}

/** The mount point of the cgroup v2 hierarchy (`/sys/fs/cgroup`, or `…/unified` on hybrid hosts). */
export function cgroup2Mount(procRoot = "/proc"): string | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${procRoot}/self/mountinfo`);
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const [pre, post] = line.split(" - ");
    if (post?.split(" ")[0] === "cgroup2") return pre!.split(" ")[4];
  }
  return undefined;
}

/** Directories visited at most by {@linkcode hostCgroupIds} (a runaway tree stays bounded). */
const SCAN_MAX = 20000;

/**
 * The ids (cgroup v2 inode numbers, as `bpf_get_current_cgroup_id` gives them) of every cgroup
 * that is not a container's, by the same test the audit context uses (a container id in the
 * path). Container subtrees are not walked. Unreadable trees give fewer ids: those count as
 * containers, which sends more, never less.
 */
export function hostCgroupIds(mount = cgroup2Mount()): bigint[] {
  if (!mount) return [];
  const out: bigint[] = [];
  const stack: string[] = [""];
  let seen = 0;
  while (stack.length && seen < SCAN_MAX) {
    const rel = stack.pop()!;
    seen++;
    if (rel !== "" && containerIdFromCgroup(rel) !== undefined) continue;
    let ino: number | null = null;
    try {
      ino = Deno.statSync(`${mount}${rel}`).ino;
      for (const e of Deno.readDirSync(`${mount}${rel}`)) {
        if (e.isDirectory) stack.push(`${rel}/${e.name}`);
      }
    } catch {
      continue; // removed while walking
    }
    if (ino !== null) out.push(BigInt(ino));
  }
  return out;
}

/** The cgroup v2 id of process `pid` (for workload pushes), or `undefined` when it is gone. */
export function cgroupIdOf(
  pid: number,
  procRoot = "/proc",
  mount = cgroup2Mount(procRoot),
): bigint | undefined {
  if (!mount) return undefined;
  try {
    const path = cgroupV2Path(Deno.readTextFileSync(`${procRoot}/${pid}/cgroup`));
    if (path === undefined) return undefined;
    const ino = Deno.statSync(`${mount}${path === "/" ? "" : path}`).ino;
    return ino === null ? undefined : BigInt(ino);
  } catch {
    return undefined;
  }
}
