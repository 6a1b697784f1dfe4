/**
 * Shared by the bad-input tests: a layout with one valid policy file, one valid service file and
 * one bad file, loaded through `loadPayloads` (all or nothing).
 *
 * @module
 */
import assert from "node:assert/strict";
import { loadPayloads } from "../cli/load_payloads.ts";
import { type LoadedConfig, parseConfigObject } from "../config/load.ts";
import { formatProblem, ValidationError } from "../errors.ts";

export const OK_POLICY = "- selectors: [{process:name: ok}]\n  certificate: {workloadID: ok}\n";
export const OK_SERVICE = "- addresses: [{address: 10.0.0.1, port: 80}]\n  labels: {app: ok}\n";

export interface Case {
  name: string;
  kind: "policies" | "services";
  /** The bad file; most put a valid item first so the bad one is item 1. */
  yaml: string;
  item: number;
  field: string;
  message: RegExp;
}

export const p = (item: string) => OK_POLICY + item;
export const s = (item: string) => OK_SERVICE + item;
export const many = (n: number, f: (i: number) => string) =>
  Array.from({ length: n }, (_, i) => f(i)).join(", ");

export async function tempLayout(kind: Case["kind"], yaml: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/policies`);
  await Deno.mkdir(`${dir}/services`);
  await Deno.writeTextFile(`${dir}/policies/good.yaml`, OK_POLICY);
  await Deno.writeTextFile(`${dir}/services/good.yaml`, OK_SERVICE);
  await Deno.writeTextFile(`${dir}/${kind}/zz-bad.yaml`, yaml);
  return dir;
}

export function configFor(dir: string): LoadedConfig {
  const parsed = parseConfigObject({
    agent: {
      trustDomain: "acme.corp",
      policiesPath: [`${dir}/policies`],
      servicesPath: [`${dir}/services`],
    },
  });
  if (!parsed.success) throw new Error("test config is invalid");
  return {
    config: parsed.data,
    file: undefined,
    origins: { "agent.policiesPath": "test", "agent.servicesPath": "test" },
  };
}

export const resolver = (name: string) => Promise.resolve(name === "db.test" ? ["10.0.0.9"] : []);

/** Loads a layout with `c`'s bad file and checks the problem names file, item and field. */
export async function expectRejected(c: Case): Promise<void> {
  const dir = await tempLayout(c.kind, c.yaml);
  try {
    const outcome = await loadPayloads(configFor(dir), { resolver }).then((r) => r, (e) => e);
    assert.ok(
      outcome instanceof ValidationError,
      "loadPayloads must throw, not return a partial set",
    );
    const file = `${dir}/${c.kind}/zz-bad.yaml`;
    const hit = outcome.problems.find((x) => x.file === file && x.field === c.field);
    assert.ok(hit, `no problem at ${c.field}; got:\n${outcome.message}`);
    assert.equal(hit.item, c.item);
    assert.match(hit.message, c.message);
    assert.equal(typeof hit.line, "number");
    const text = formatProblem(hit);
    assert.ok(text.startsWith(`${file}:${hit.line}: item ${c.item}: `), text);
    if (c.field) assert.ok(text.includes(`: ${c.field}: `), text);
    for (const other of outcome.problems) assert.equal(other.file, file, formatProblem(other));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
