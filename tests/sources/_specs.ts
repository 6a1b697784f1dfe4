/**
 * Source specs for tests, made the way the agent makes them: a config object through the real
 * config schema and `sourceSpecs`.
 *
 * @module
 */
import { parseConfigObject } from "../../agent/config/load.ts";
import type { LoadedConfig } from "../../agent/config/load.ts";
import { type SourceSpec, sourceSpecs } from "../../agent/sources/spec.ts";

/** The specs of a config with these `plugins.policySource` entries (and `agent` keys). */
export function specsFor(
  policySource: Record<string, unknown>[],
  agent: Record<string, unknown> = {},
  origins: Record<string, string> = {},
): SourceSpec[] {
  const parsed = parseConfigObject({
    agent: { trustDomain: "acme.test", ...agent },
    plugins: { policySource },
  });
  if (!parsed.success) throw new Error(JSON.stringify(parsed.error.issues));
  const loaded: LoadedConfig = { config: parsed.data, file: undefined, origins };
  const { specs, problems } = sourceSpecs(loaded);
  if (problems.length) throw new Error(JSON.stringify(problems));
  return specs;
}

/** A resolver answering from a fixed table (names not in it do not resolve). */
export function tableResolver(hosts: Record<string, string[]>) {
  return (name: string) =>
    hosts[name] ? Promise.resolve(hosts[name]) : Promise.reject(new Error("no such host"));
}
