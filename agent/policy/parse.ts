/**
 * The shared front end of policy and service files: template pass, YAML parse, "must be a list",
 * and per-item zod validation whose issues become {@linkcode Problem}s with file, 0-based item,
 * 1-based line and field path.
 *
 * @module
 */
import type { z } from "zod";
import type { Problem } from "../errors.ts";
import { formatPath, issuesToProblems } from "../problems.ts";
import { renderTemplate, type TemplateValues } from "./template.ts";
import { parseYamlSource, type YamlSource } from "./yaml_source.ts";

/** One item that passed its schema. */
export interface ValidItem<T> {
  item: number;
  line?: number;
  data: T;
}

/** Result of {@linkcode parseItems}: valid items and the problems of the others. */
export interface ParsedItems<T> {
  items: ValidItem<T>[];
  problems: Problem[];
  source?: YamlSource;
}

/** Options for {@linkcode parseItems}. */
export interface ParseItemsOptions {
  /** What an item is, for messages: "policy" or "service". */
  noun: string;
  /** When set, `{{.TrustDomain}}` is rendered first. */
  template?: TemplateValues;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a map";
  return typeof value === "string" ? `a string` : `a ${typeof value}`;
}

function get(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/** Problems for one item's zod issues, each located at its own line. */
function itemProblems(
  issues: readonly z.core.$ZodIssue[],
  file: string,
  item: number,
  value: unknown,
  source: YamlSource,
): Problem[] {
  const out: Problem[] = [];
  const at = (path: readonly PropertyKey[]) => {
    const line = source.lineOf([item, ...path]);
    return line === undefined ? { file, item } : { file, item, line };
  };
  for (const issue of issues) {
    const path = issue.path as PropertyKey[];
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        out.push({
          ...at([...path, key]),
          field: formatPath([...path, key]),
          message: `unknown field "${key}"`,
        });
      }
    } else if (issue.code === "invalid_key") {
      const inner = issue.issues.map((i) => i.message).join("; ");
      out.push({ ...at(path), field: formatPath(path), message: inner });
    } else if (issue.code === "invalid_union") {
      // Point at the offending list element when a list value is what failed.
      const v = get(value, path);
      const bad = Array.isArray(v) && v.length > 0
        ? v.findIndex((x) => typeof x !== "string" && !Number.isFinite(x))
        : -1;
      const p = bad >= 0 ? [...path, bad] : path;
      out.push({ ...at(p), field: formatPath(p), message: issue.message });
    } else {
      out.push(...issuesToProblems([issue], at(path), { input: value }));
    }
  }
  return out;
}

/**
 * Parses `text` (the file `file`) into a list of items validated by `schema`. Every problem is
 * returned; valid items are returned too so callers can run further checks, but a caller must not
 * use any of them when `problems` is non-empty.
 */
export function parseItems<T>(
  file: string,
  text: string,
  schema: z.ZodType<T>,
  options: ParseItemsOptions,
): ParsedItems<T> {
  let body = text;
  if (options.template) {
    const rendered = renderTemplate(text, options.template);
    if (rendered.problems.length) {
      // Locate each action in the unrendered text when it parses, for item and field.
      const raw = parseYamlSource(text).source;
      const problems = rendered.problems.map(({ line, offset, message }): Problem => {
        const path = raw?.pathAt(offset);
        if (!Array.isArray(raw?.value) || !path?.length || typeof path[0] !== "number") {
          return { file, line, message };
        }
        const field = formatPath(path.slice(1));
        return { file, line, item: path[0], ...(field ? { field } : {}), message };
      });
      return { items: [], problems };
    }
    body = rendered.text;
  }
  const { source, problems: yamlProblems } = parseYamlSource(body);
  if (!source) return { items: [], problems: yamlProblems.map((p) => ({ file, ...p })) };
  const doc = source.value;
  if (doc === null || doc === undefined) return { items: [], problems: [], source };
  if (!Array.isArray(doc)) {
    const line = source.lineOf([]);
    return {
      items: [],
      problems: [{
        file,
        ...(line === undefined ? {} : { line }),
        message: `expected a list of ${options.noun} items ("- ..."), got ${describe(doc)}`,
      }],
      source,
    };
  }
  const items: ValidItem<T>[] = [];
  const problems: Problem[] = [];
  doc.forEach((value, item) => {
    const result = schema.safeParse(value);
    if (!result.success) {
      problems.push(...itemProblems(result.error.issues, file, item, value, source));
      return;
    }
    const line = source.lineOf([item]);
    items.push(
      line === undefined ? { item, data: result.data } : { item, line, data: result.data },
    );
  });
  // Within a file, report in reading order.
  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return { items, problems, source };
}
