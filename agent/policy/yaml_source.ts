/**
 * A parsed YAML (or JSON) file that remembers where each value was written: lines for problems,
 * and the literal text of numbers so `1.50` stays `1.50`.
 *
 * @module
 */
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
} from "yaml";

/** Aliases allowed per file; more is an alias bomb ("billion laughs"). */
export const MAX_ALIAS_COUNT = 100;

/** A parsed file. */
export interface YamlSource {
  /** The plain value (`null` for an empty file). */
  value: unknown;
  /** 1-based line of the value at `path`, or of its nearest ancestor. */
  lineOf(path: readonly PropertyKey[]): number | undefined;
  /** The text a scalar at `path` was written as (e.g. `1.50`), if it is a scalar. */
  literalOf(path: readonly PropertyKey[]): string | undefined;
  /** The path of the innermost value or key written at character `offset`, if any. */
  pathAt(offset: number): PropertyKey[] | undefined;
}

/** A YAML problem: line (when known) and reason. */
export interface YamlProblem {
  line?: number;
  message: string;
}

function firstLine(message: string): string {
  return message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}

/**
 * Parses `text` as one YAML 1.2 document (JSON is YAML). Duplicate keys, syntax errors, unknown
 * tags, several documents and alias bombs are problems; nothing throws.
 *
 * @example
 * ```ts
 * import { parseYamlSource } from "./yaml_source.ts";
 * const { source } = parseYamlSource("- a: 1.50\n");
 * source?.literalOf([0, "a"]); // "1.50"
 * ```
 */
export function parseYamlSource(
  text: string,
): { source?: YamlSource; problems: YamlProblem[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
  const problems: YamlProblem[] = [...doc.errors, ...doc.warnings].map((e) => {
    const line = e.linePos?.[0]?.line;
    return line === undefined
      ? { message: `YAML: ${firstLine(e.message)}` }
      : { line, message: `YAML: ${firstLine(e.message)}` };
  });
  if (problems.length) return { problems };
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    return {
      problems: [{
        message: `YAML: cannot expand aliases: ${firstLine((e as Error).message)} ` +
          `(at most ${MAX_ALIAS_COUNT} alias uses per file)`,
      }],
    };
  }
  const lineAt = (node: Node | null | undefined) =>
    node?.range ? lines.linePos(node.range[0]).line : undefined;
  const walk = (path: readonly PropertyKey[]) => {
    let node: unknown = doc.contents;
    let line = lineAt(doc.contents);
    let complete = true;
    for (const key of path) {
      if (isAlias(node)) node = node.resolve(doc as Document);
      if (isMap(node)) {
        const pair = node.items.find((p) =>
          String(isScalar(p.key) ? p.key.value : p.key) === String(key)
        );
        if (!pair) {
          complete = false;
          break;
        }
        line = lineAt(pair.key as Node) ?? line;
        node = pair.value;
      } else if (isSeq(node) && typeof key === "number" && node.items[key] !== undefined) {
        node = node.items[key];
        line = lineAt(node as Node) ?? line;
      } else {
        complete = false;
        break;
      }
    }
    if (isAlias(node)) node = node.resolve(doc as Document);
    return { node: complete ? node : undefined, line };
  };
  const within = (node: unknown, offset: number) => {
    const r = (node as Node | null)?.range;
    return r !== undefined && r !== null && r[0] <= offset && offset < r[2];
  };
  const pathAt = (offset: number) => {
    if (!within(doc.contents, offset)) return undefined;
    const path: PropertyKey[] = [];
    let node: unknown = doc.contents;
    for (;;) {
      if (isMap(node)) {
        const pair = node.items.find((p) => within(p.key, offset) || within(p.value, offset));
        if (!pair) return path;
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        path.push(typeof key === "number" ? key : String(key));
        if (within(pair.key, offset)) return path;
        node = pair.value;
      } else if (isSeq(node)) {
        const i = node.items.findIndex((item) => within(item, offset));
        if (i < 0) return path;
        path.push(i);
        node = node.items[i];
      } else return path;
    }
  };
  return {
    problems: [],
    source: {
      pathAt,
      value,
      lineOf: (path) => walk(path).line,
      literalOf: (path) => {
        const { node } = walk(path);
        return isScalar(node) && typeof node.source === "string" ? node.source : undefined;
      },
    },
  };
}
