/**
 * Which policy sources a configuration asks for: every `plugins.policySource[]` entry (`type` is
 * the plugin, `name` names the source, `optional` lets the agent start without it,
 * `issuanceEntrypoint` picks the rule of a delivered OPA policy; the other keys are the plugin's
 * config), plus, for Camblet users, an implicit `file` source made of `--policies-path` and
 * `--services-path` (always when no source is declared, else when those paths are set).
 *
 * @module
 */
import type { LoadedConfig } from "../config/load.ts";
import type { Problem } from "../errors.ts";
import { DEFAULT_ENTRYPOINT } from "../opa/issuance_hook.ts";
import type { PluginSelection } from "../../plugins/loader.ts";

/** One configured source. */
export interface SourceSpec {
  /** `type(name)`, e.g. `git(corp)`: prefixes its problems and names it in status. */
  id: string;
  type: string;
  name: string;
  selection: PluginSelection;
  /** May fail at startup without stopping the agent. */
  optional: boolean;
  /** Rule of a delivered OPA issuance policy. */
  entrypoint: string;
  /**
   * The implicit source of `--policies-path`/`--services-path`: its files keep their plain paths
   * in messages and payload order, exactly as before sources existed.
   */
  implicit: boolean;
}

/** The name of the implicit source of `--policies-path` and `--services-path`. */
export const IMPLICIT_NAME = "paths";

const NAME = /^[a-z0-9][a-z0-9_-]*$/;
const OWN_KEYS = new Set(["type", "name", "optional", "issuanceEntrypoint"]);

/**
 * The sources of `loaded`, in declaration order (the implicit one last). Returns every problem.
 *
 * @example
 * ```ts ignore
 * const { specs } = sourceSpecs(await loadConfig());
 * specs.map((s) => s.id); // ["git(corp)", "file(paths)"]
 * ```
 */
export function sourceSpecs(loaded: LoadedConfig): { specs: SourceSpec[]; problems: Problem[] } {
  const { config, origins } = loaded;
  const declared = config.plugins.policySource ?? [];
  const specs: SourceSpec[] = [];
  const problems: Problem[] = [];
  const names = new Set<string>();
  declared.forEach((entry, i) => {
    const path = `plugins.policySource[${i}]`;
    const bad = (field: string, message: string) =>
      problems.push({ source: loaded.file ?? "config", field: `${path}.${field}`, message });
    const type = entry["type"];
    if (typeof type !== "string" || type === "") {
      bad("type", 'required: the source plugin ("file", "git", "http")');
      return;
    }
    const name = entry["name"] ?? String(i);
    if (typeof name !== "string" || !NAME.test(name)) {
      bad("name", "must be lower-case letters, digits, - or _");
      return;
    }
    if (names.has(name) || name === IMPLICIT_NAME) {
      bad("name", `"${name}" is ${name === IMPLICIT_NAME ? "reserved" : "used twice"}`);
      return;
    }
    names.add(name);
    const optional = entry["optional"] ?? false;
    if (typeof optional !== "boolean") bad("optional", "must be true or false");
    const entrypoint = entry["issuanceEntrypoint"] ?? DEFAULT_ENTRYPOINT;
    if (typeof entrypoint !== "string" || !/^[\w.-]+(\/[\w.-]+)*$/.test(entrypoint)) {
      bad("issuanceEntrypoint", 'must be a rule path such as "camblet/issuance/decision"');
    }
    const own = Object.fromEntries(Object.entries(entry).filter(([k]) => !OWN_KEYS.has(k)));
    specs.push({
      id: `${type}(${name})`,
      type,
      name,
      selection: { kind: "policySource", name: type, config: own, path },
      optional: optional === true,
      entrypoint: String(entrypoint),
      implicit: false,
    });
  });
  const agent = config.agent;
  const policiesSet = origins["agent.policiesPath"] !== undefined;
  const servicesSet = origins["agent.servicesPath"] !== undefined;
  if (declared.length === 0 || policiesSet || servicesSet) {
    const allowMissing = [
      ...(policiesSet ? [] : agent.policiesPath),
      ...(servicesSet ? [] : agent.servicesPath),
    ];
    specs.push({
      id: `file(${IMPLICIT_NAME})`,
      type: "file",
      name: IMPLICIT_NAME,
      selection: {
        kind: "policySource",
        name: "file",
        config: {
          policies: declared.length && !policiesSet ? [] : agent.policiesPath,
          services: declared.length && !servicesSet ? [] : agent.servicesPath,
          allowMissing,
        },
        path: "agent.policiesPath",
      },
      optional: false,
      entrypoint: DEFAULT_ENTRYPOINT,
      implicit: true,
    });
  }
  return { specs, problems };
}
