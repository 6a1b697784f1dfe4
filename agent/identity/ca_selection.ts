/**
 * Which CA plugin the config selects, as a loader selection: `agent.ca` names it; a
 * `plugins.external[]` entry of kind `ca` with that name wins over a built-in; the `self-signed`
 * CA gets `agent.caPEMPath` (`--ca-pem-path`) unless `plugins.ca.self-signed.caPemPath` is set.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { externalPlugin } from "../../plugins/external.ts";
import type { PluginSelection } from "../../plugins/loader.ts";

/**
 * The CA selection for `config`.
 *
 * @example
 * ```ts ignore
 * import { caSelection } from "./ca_selection.ts";
 * const plugins = await loadPlugins([caSelection(config), ...attestors], { context });
 * ```
 */
export function caSelection(config: Config): PluginSelection {
  const name = config.agent.ca;
  const external = config.plugins.external ?? [];
  const i = external.findIndex((e) => e["kind"] === "ca" && e["name"] === name);
  if (i >= 0) {
    return {
      kind: "ca",
      name,
      config: external[i],
      path: `plugins.external[${i}]`,
      definition: externalPlugin("ca", name),
    };
  }
  const raw = config.plugins.ca?.[name];
  const own = typeof raw === "object" && raw !== null ? raw as Record<string, unknown> : {};
  return {
    kind: "ca",
    name,
    config: name === "self-signed" ? { caPemPath: config.agent.caPEMPath, ...own } : raw,
    path: `plugins.ca.${name}`,
  };
}
