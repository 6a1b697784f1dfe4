/**
 * Selector maps → the kernel's flat selector sets: every map's lists are expanded into their
 * cartesian product, one `{"name=value": true}` object per combination (protocol doc §3.1).
 *
 * @module
 */
import type { SelectorSet } from "../../driver/payloads.ts";
import type { SelectorEntries } from "./source.ts";

/**
 * Expands one selector map. Keys keep their written order; `{}` gives one empty set (match all).
 *
 * @example
 * ```ts
 * import { expandSelectorMap } from "./selectors.ts";
 * expandSelectorMap([["process:uid", ["501", "1001"]], ["process:name", ["python3"]]]);
 * // [{"process:uid=501": true, "process:name=python3": true},
 * //  {"process:uid=1001": true, "process:name=python3": true}]
 * ```
 */
export function expandSelectorMap(entries: SelectorEntries): SelectorSet[] {
  let combos: string[][] = [[]];
  for (const [name, values] of entries) {
    const next: string[][] = [];
    for (const combo of combos) {
      for (const v of values) next.push([...combo, `${name}=${v}`]);
    }
    combos = next;
  }
  return combos.map((labels) => {
    const set: SelectorSet = {};
    for (const l of labels) set[l] = true;
    return set;
  });
}

/** Expands every map of a policy and drops repeated sets (first one kept). */
export function expandSelectors(maps: readonly SelectorEntries[]): SelectorSet[] {
  // One map's combinations are distinct already (its keys and values are unique).
  if (maps.length === 1) return expandSelectorMap(maps[0]!);
  const seen = new Set<string>();
  const out: SelectorSet[] = [];
  for (const map of maps) {
    for (const set of expandSelectorMap(map)) {
      const key = Object.keys(set).sort().join("\n");
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(set);
    }
  }
  return out;
}
