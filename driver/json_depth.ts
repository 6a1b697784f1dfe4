/**
 * How deep a JSON text nests, found by one pass over its characters before `JSON.parse` sees it:
 * parsing a message of a million brackets holds the agent's thread for seconds, and no protocol
 * message nests more than a few levels.
 *
 * @module
 */

/**
 * Whether `text` (JSON) nests arrays and objects deeper than `max`. Brackets inside strings do
 * not count.
 *
 * @example
 * ```ts
 * import { jsonDeeperThan } from "./json_depth.ts";
 * jsonDeeperThan('{"a":[1,{"b":"[[["}]}', 2); // false
 * jsonDeeperThan("[[[1]]]", 2); // true
 * ```
 */
export function jsonDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}
