/**
 * A policy's `runtime:` section: what the selected workload may do on the host, enforced by the
 * runtime guard (BPF LSM). Schema (strict, per-field messages) and the pure resolution of
 * profiles + the policy's own rules into one {@linkcode RuntimeRules} that says where each rule
 * came from (for `explain`).
 *
 * ```yaml
 * runtime:
 *   mode: enforce            # or audit: report, do not deny
 *   profiles: [baseline]     # built-ins: baseline, restricted
 *   exec: {deny: [/bin/sh, /usr/bin/*sh]}   # or allow: [...] = nothing else may run
 *   files: {denyRead: [/etc/shadow, /srv/secrets/], denyWrite: [/etc/]}
 *   rawSockets: deny         # ptrace syslog mount modules bpf rawSockets setuidRoot
 * ```
 *
 * @module
 */
import { z } from "zod";
import {
  BUILTIN_PROFILES,
  CAPABILITIES,
  type Capability,
  profileNames,
} from "./runtime_profiles.ts";

/** Longest path the kernel side compares (bytes, without the NUL). */
export const MAX_RUNTIME_PATH = 255;
/** Most paths one list may hold. */
export const MAX_RUNTIME_PATHS = 256;

/** Why `p` cannot be a runtime path pattern, or `undefined`. */
export function runtimePathProblem(p: string): string | undefined {
  if (!p.startsWith("/")) return `path ${JSON.stringify(p)} must be absolute (start with /)`;
  if (new TextEncoder().encode(p).length > MAX_RUNTIME_PATH) {
    return `path ${JSON.stringify(p.slice(0, 40))}… is longer than ${MAX_RUNTIME_PATH} bytes`;
  }
  if (p.split("/").some((s) => s === "." || s === "..")) {
    return `path ${JSON.stringify(p)} must not contain . or .. components`;
  }
  if (/\/\//.test(p)) return `path ${JSON.stringify(p)} has an empty component (//)`;
  if (p.includes("**") && !p.endsWith("/**")) {
    return `path ${JSON.stringify(p)}: ** is allowed only as the last component (dir/**)`;
  }
  return undefined;
}

const pathPattern = z.string().superRefine((s, ctx) => {
  const p = runtimePathProblem(s);
  if (p) ctx.addIssue({ code: "custom", message: p });
}).meta({
  description: "absolute path; a trailing / or /** matches everything below; * ? [..] globs " +
    "are expanded against the file system when rules load",
});

const pathList = z.array(pathPattern)
  .max(MAX_RUNTIME_PATHS, `at most ${MAX_RUNTIME_PATHS} paths`)
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((v, i) => {
      if (seen.has(v)) {
        ctx.addIssue({ code: "custom", path: [i], message: `duplicate path "${v}"` });
      }
      seen.add(v);
    });
  });

const switchSchema = z.enum(["deny", "allow"], {
  error: (iss) => `${JSON.stringify(iss.input)} is not a rule value; use deny or allow`,
});

const capabilityFields = Object.fromEntries(
  CAPABILITIES.map((c) => [c, switchSchema.optional()]),
) as Record<Capability, z.ZodOptional<typeof switchSchema>>;

/** The `runtime:` section of a policy. */
export const runtimeSchema = z.object({
  mode: z.enum(["enforce", "audit"], {
    error: (iss) => `mode is ${JSON.stringify(iss.input)}; use enforce or audit`,
  }).optional().meta({ description: "enforce (default) denies; audit only reports" }),
  profiles: z.array(
    z.string().refine((n) => Object.hasOwn(BUILTIN_PROFILES, n), {
      error: (iss) =>
        `unknown runtime profile ${JSON.stringify(iss.input)}; known: ${profileNames().join(", ")}`,
    }),
  ).optional().meta({ description: "profiles applied first, in order; the policy's rules win" }),
  exec: z.object({
    allow: pathList.optional().meta({ description: "if set, only these may be executed" }),
    deny: pathList.optional().meta({ description: "never executed (wins over allow)" }),
  }).strict().optional(),
  files: z.object({
    denyRead: pathList.optional().meta({ description: "never opened for reading" }),
    denyWrite: pathList.optional().meta({ description: "never opened for writing" }),
  }).strict().optional(),
  ...capabilityFields,
}).strict().meta({
  description: "what the selected workloads may do on the host (runtime guard, BPF LSM); " +
    "capabilities: ptrace (of other processes), syslog (kernel log), mount, modules (kernel " +
    "module and firmware load), bpf, rawSockets, setuidRoot",
});

/** A `runtime:` section as written (validated). */
export type RuntimeDocument = z.infer<typeof runtimeSchema>;

/** Where one resolved rule came from. */
export type RuleOrigin = "policy" | `profile ${string}`;

/** One path rule with its origin. */
export interface PathRule {
  path: string;
  origin: RuleOrigin;
}

/** Profiles and the policy's own rules merged: what the guard enforces for one policy. */
export interface RuntimeRules {
  mode: "enforce" | "audit";
  /** Undefined = any program may run (subject to `execDeny`). */
  execAllow?: PathRule[];
  execDeny: PathRule[];
  denyRead: PathRule[];
  denyWrite: PathRule[];
  /** Denied capabilities, with the origin of the deciding rule. */
  deny: Map<Capability, RuleOrigin>;
}

function addPaths(into: PathRule[], paths: readonly string[] | undefined, origin: RuleOrigin) {
  for (const path of paths ?? []) {
    if (!into.some((r) => r.path === path)) into.push({ path, origin });
  }
}

/**
 * Resolves profiles (in order) and then the policy's own rules; a later `allow` lifts an earlier
 * `deny` of the same capability.
 *
 * @example
 * ```ts
 * import { resolveRuntime } from "./runtime.ts";
 * const r = resolveRuntime({ profiles: ["baseline"], mount: "allow" });
 * r.deny.has("mount"); // false
 * r.deny.get("syslog"); // "profile baseline"
 * ```
 */
export function resolveRuntime(doc: RuntimeDocument): RuntimeRules {
  const out: RuntimeRules = {
    mode: doc.mode ?? "enforce",
    execDeny: [],
    denyRead: [],
    denyWrite: [],
    deny: new Map(),
  };
  const layers: { origin: RuleOrigin; body: Omit<RuntimeDocument, "mode" | "profiles"> }[] = [];
  for (const name of doc.profiles ?? []) {
    const p = BUILTIN_PROFILES[name];
    if (!p) throw new RangeError(`Cannot resolve runtime profile "${name}": unknown`);
    layers.push({
      origin: `profile ${name}`,
      body: { ...p.capabilities, exec: p.exec, files: p.files },
    });
  }
  layers.push({ origin: "policy", body: doc });
  for (const { origin, body } of layers) {
    if (body.exec?.allow) {
      out.execAllow ??= [];
      addPaths(out.execAllow, body.exec.allow, origin);
    }
    addPaths(out.execDeny, body.exec?.deny, origin);
    addPaths(out.denyRead, body.files?.denyRead, origin);
    addPaths(out.denyWrite, body.files?.denyWrite, origin);
    for (const c of CAPABILITIES) {
      if (body[c] === "deny") out.deny.set(c, origin);
      else if (body[c] === "allow") out.deny.delete(c);
    }
  }
  return out;
}

/** Human-readable lines of `rules`, each with its origin (explain, validate). */
export function describeRuntime(rules: RuntimeRules): string[] {
  const lines = [`mode ${rules.mode}`];
  const paths = (what: string, list: PathRule[]) => {
    for (const r of list) lines.push(`${what} ${r.path}  (${r.origin})`);
  };
  if (rules.execAllow) {
    if (!rules.execAllow.length) lines.push("exec allow: nothing");
    paths("exec allow", rules.execAllow);
  }
  paths("exec deny", rules.execDeny);
  paths("read deny", rules.denyRead);
  paths("write deny", rules.denyWrite);
  for (const [c, origin] of [...rules.deny].sort(([a], [b]) => a < b ? -1 : 1)) {
    lines.push(`${c} deny  (${origin})`);
  }
  return lines;
}
