/**
 * The built-in attestors and how the agent's config turns them on: each is named by its Go
 * config key under `agent.metadataCollectors` (`procfs` → the `process` plugin), and may get extra
 * settings from `plugins.attestor.<plugin name>`.
 *
 * @module
 */
import type { Attestor, PluginContext, PluginDefinition } from "../../plugins/types.ts";
import { systemClock } from "../../plugins/types.ts";
import { processAttestor } from "../../plugins/attestor/process/process.ts";
import { systemdAttestor } from "../../plugins/attestor/systemd/systemd.ts";
import { dockerAttestor } from "../../plugins/attestor/docker/docker.ts";
import { containerdAttestor } from "../../plugins/attestor/containerd/containerd.ts";
import { kubernetesAttestor } from "../../plugins/attestor/kubernetes/kubernetes.ts";
import { linuxOsAttestor } from "../../plugins/attestor/linuxos/linuxos.ts";
import { sysfsDmiAttestor } from "../../plugins/attestor/sysfsdmi/sysfsdmi.ts";
import { ec2Attestor } from "../../plugins/attestor/cloud/ec2.ts";
import { gcpAttestor } from "../../plugins/attestor/cloud/gcp.ts";
import { azureAttestor } from "../../plugins/attestor/cloud/azure.ts";
import type { Config } from "../config/schema.ts";
import { type Problem, ValidationError } from "../errors.ts";
import { logger } from "../log.ts";
import { parseDuration } from "../duration.ts";
import { Attestation, type AttestationOptions } from "./runner.ts";

// deno-lint-ignore no-explicit-any
type AnyAttestorPlugin = PluginDefinition<"attestor", any, Attestor>;

/** Go config key → plugin, in the order collectors run and labels are listed. */
export const BUILTIN_ATTESTORS: readonly { key: string; plugin: AnyAttestorPlugin }[] = [
  { key: "procfs", plugin: processAttestor },
  { key: "systemd", plugin: systemdAttestor },
  { key: "docker", plugin: dockerAttestor },
  { key: "containerd", plugin: containerdAttestor },
  { key: "kubernetes", plugin: kubernetesAttestor },
  { key: "linuxos", plugin: linuxOsAttestor },
  { key: "sysfsdmi", plugin: sysfsDmiAttestor },
  { key: "ec2", plugin: ec2Attestor },
  { key: "gcp", plugin: gcpAttestor },
  { key: "azure", plugin: azureAttestor },
];

/** A parsed, enabled attestor ready to be created. */
export interface PlannedAttestor {
  plugin: AnyAttestorPlugin;
  config: unknown;
}

function withoutUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/**
 * Parses every attestor's config (pure: no I/O). Returns the enabled ones, or every problem with
 * its config path. `validate` uses this too.
 */
export function planAttestors(config: Config): { planned: PlannedAttestor[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const planned: PlannedAttestor[] = [];
  const collectors = config.agent.metadataCollectors as Record<string, Record<string, unknown>>;
  const extra = (config.plugins.attestor ?? {}) as Record<string, unknown>;
  const known = new Set(BUILTIN_ATTESTORS.map((b) => b.plugin.name));
  for (const name of Object.keys(extra)) {
    if (!known.has(name)) {
      problems.push({
        field: `plugins.attestor.${name}`,
        message: `unknown attestor "${name}"; known: ${[...known].join(", ")}`,
      });
    }
  }
  for (const { key, plugin } of BUILTIN_ATTESTORS) {
    const override = extra[plugin.name];
    if (
      override !== undefined &&
      (override === null || typeof override !== "object" || Array.isArray(override))
    ) {
      problems.push({ field: `plugins.attestor.${plugin.name}`, message: "must be a map" });
      continue;
    }
    const raw = {
      ...withoutUndefined(collectors[key] ?? {}),
      ...(override as Record<string, unknown> ?? {}),
    };
    const r = plugin.parseConfig(raw);
    if (!r.ok) {
      const base = override !== undefined
        ? `plugins.attestor.${plugin.name}`
        : `agent.metadataCollectors.${key}`;
      for (const p of r.problems) {
        problems.push({ field: p.field ? `${base}.${p.field}` : base, message: p.message });
      }
      continue;
    }
    if ((r.value as { enabled?: boolean }).enabled) planned.push({ plugin, config: r.value });
  }
  return { planned, problems };
}

/** Options of {@linkcode createAttestation}. */
export interface CreateAttestationOptions
  extends Omit<AttestationOptions, "budgetMs" | "strict" | "cacheTtlMs"> {
  /** Aborted when the agent stops. */
  signal?: AbortSignal;
}

/**
 * Creates the enabled attestors and the runner from the agent config. Throws
 * {@linkcode ValidationError} with every config problem; a plugin that fails to start is
 * disposed with the ones before it. Call `start()` on the result to warm the cache in the
 * background, and `dispose()` at shutdown.
 *
 * @example
 * ```ts ignore
 * import { createAttestation } from "./builtin.ts";
 * const attestation = await createAttestation(config);
 * attestation.start();
 * const labels = await attestation.augmentLabels(taskContext, AbortSignal.timeout(600));
 * ```
 */
export async function createAttestation(
  config: Config,
  options: CreateAttestationOptions = {},
): Promise<Attestation> {
  const { planned, problems } = planAttestors(config);
  if (problems.length) throw new ValidationError("Cannot configure attestors", problems);
  const created: Attestor[] = [];
  const clock = options.clock ?? systemClock;
  try {
    for (const { plugin, config: pc } of planned) {
      const ctx: PluginContext = {
        log: logger("plugin", "attestor", plugin.name),
        clock,
        trustDomain: config.agent.trustDomain,
        signal: options.signal ?? new AbortController().signal,
      };
      try {
        created.push(await plugin.create(pc, ctx));
      } catch (e) {
        throw new Error(`attestor(${plugin.name}): Cannot start: ${(e as Error).message}`, {
          cause: e,
        });
      }
    }
  } catch (e) {
    for (const a of created.reverse()) await a.dispose?.();
    throw e;
  }
  const a = config.agent.attestation;
  return new Attestation(created, {
    ...options,
    clock,
    budgetMs: parseDuration(a.budget),
    strict: a.strict,
    cacheTtlMs: parseDuration(a.cacheTTL),
  });
}
