/**
 * Policy sources, merged: the one door into agent/sources for the daemon and the CLI.
 *
 * @example
 * ```ts ignore
 * import { PolicySources, sourceSpecs } from "./mod.ts";
 * const { specs } = sourceSpecs(loaded);
 * const sources = await PolicySources.start({ specs, trustDomain: "acme.corp" });
 * sources.subscribe((snapshot) => pushToKernel(snapshot.payloads));
 * ```
 *
 * @module
 */
export { PolicySources, type PolicySourcesOptions } from "./policy_sources.ts";
export type { PolicySnapshot } from "./snapshot.ts";
export { IMPLICIT_NAME, type SourceSpec, sourceSpecs } from "./spec.ts";
export {
  type SourceError,
  sourcesMetrics,
  type SourcesStatus,
  type SourceState,
  type SourceStatus,
} from "./status.ts";
export type { IssuanceInForce, SourcedProvenance } from "./compile_set.ts";
