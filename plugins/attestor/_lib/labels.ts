/**
 * Building label sets: `segment:…:key` → values, empty values dropped, duplicates removed.
 *
 * @module
 */
import type { Labels } from "../../types.ts";

/**
 * Accumulates labels. Empty or missing values are skipped (the Go collectors did the same, so a
 * label never matches on an empty string).
 *
 * @example
 * ```ts
 * import { LabelBuilder } from "./labels.ts";
 * const b = new LabelBuilder("docker");
 * b.add("name", "web").add("label:app", "nginx").add("image:name", "");
 * b.build(); // { "docker:name": ["web"], "docker:label:app": ["nginx"] }
 * ```
 */
export class LabelBuilder {
  readonly #prefix: string;
  readonly #labels: Labels = {};

  /** `prefix` is the first segment (`process`, `k8s`); an empty key yields the prefix alone. */
  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  /** Adds values under `key` (relative to the prefix). */
  add(key: string, ...values: (string | number | undefined | null)[]): this {
    const name = key === "" ? this.#prefix : `${this.#prefix}:${key}`;
    for (const v of values) {
      if (v === undefined || v === null) continue;
      const s = String(v);
      if (s === "") continue;
      const list = listOf(this.#labels, name);
      if (!list.includes(s)) list.push(s);
    }
    return this;
  }

  /** Adds every entry of a string map under `segment:<key>`. */
  addMap(segment: string, map: Record<string, unknown> | undefined | null): this {
    for (const [k, v] of Object.entries(map ?? {})) {
      if (typeof v === "string" || typeof v === "number") this.add(`${segment}:${k}`, v);
    }
    return this;
  }

  /** The labels collected so far. */
  build(): Labels {
    return this.#labels;
  }
}

/**
 * The list under `name`, created as an own property: label names come from workloads (docker and
 * k8s labels, plugins), and `constructor` or `__proto__` must be a label like any other.
 */
function listOf(labels: Labels, name: string): string[] {
  if (Object.hasOwn(labels, name)) return labels[name]!;
  const list: string[] = [];
  Object.defineProperty(labels, name, {
    value: list,
    enumerable: true,
    writable: true,
    configurable: true,
  });
  return list;
}

/** Merges label sets: values of the same name are united, order kept. */
export function mergeLabels(...sets: Labels[]): Labels {
  const out: Labels = {};
  for (const set of sets) {
    for (const [name, values] of Object.entries(set)) {
      const list = listOf(out, name);
      for (const v of values) if (!list.includes(v)) list.push(v);
    }
  }
  return out;
}

/** Labels as the kernel wants them: sorted `name=value` strings. */
export function labelStrings(labels: Labels): string[] {
  const out: string[] = [];
  for (const [name, values] of Object.entries(labels)) {
    for (const v of values) out.push(`${name}=${v}`);
  }
  return out.sort();
}
