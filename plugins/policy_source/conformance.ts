/**
 * The conformance suite every policy source runs (one suite, many implementations): call
 * {@linkcode policySourceConformance} from the plugin's test with a way to publish content in
 * that source (write files, commit and push, serve a bundle).
 *
 * @module
 */
import assert from "node:assert/strict";
import type { PolicySourceInstance, SourceCheck } from "./types.ts";

/** Content to publish: paths relative to the source root (`policies/a.yaml`) → bytes or text. */
export type Content = Record<string, string | Uint8Array>;

/** The source under test and how to change what it serves. */
export interface SourceUnderTest {
  /** Created after the first publish; its schedule must be short (≤ 200 ms). */
  source: PolicySourceInstance;
  /** Replaces everything the source serves with `content`. */
  publish(content: Content): Promise<void>;
  /** Removes what setup made (the suite disposes the source itself). */
  cleanup(): Promise<void>;
}

const POLICY = (name: string) =>
  `- selectors: [{process:name: ${name}}]\n  certificate: {workloadID: ${name}}\n`;

function delivered(r: SourceCheck): Record<string, string> {
  assert.equal(r.kind, "delivery", JSON.stringify(r));
  if (r.kind !== "delivery") return {};
  // Sources name files differently (a full path for `file`); compare from the kind's folder on.
  return Object.fromEntries(r.delivery.files.map((f) => {
    const i = f.path.lastIndexOf(`${f.kind}/`);
    return [`${f.kind}:${i >= 0 ? f.path.slice(i + f.kind.length + 1) : f.path}`, f.text];
  }));
}

/** Runs every case as a step of `t`. `setup` publishes `initial` and creates the source. */
export async function policySourceConformance(
  t: Deno.TestContext,
  setup: (initial: Content) => Promise<SourceUnderTest>,
): Promise<void> {
  const u = await setup({ "policies/a.yaml": POLICY("a"), "services/s.yaml": "[]\n" });
  let first = "";
  try {
    await t.step("conformance: the first check delivers every file with a revision", async () => {
      const r = await u.source.check();
      assert.deepEqual(delivered(r), { "policies:a.yaml": POLICY("a"), "services:s.yaml": "[]\n" });
      first = r.kind === "delivery" ? r.delivery.revision : "";
      assert.ok(first.length > 0);
    });
    await t.step("conformance: nothing changed is unchanged, with the same revision", async () => {
      assert.deepEqual(await u.source.check(), { kind: "unchanged", revision: first });
    });
    await t.step("conformance: a change is a new delivery; removed files are gone", async () => {
      await u.publish({ "policies/b.yaml": POLICY("b") });
      const r = await u.source.check();
      assert.deepEqual(delivered(r), { "policies:b.yaml": POLICY("b") });
      assert.notEqual(r.kind === "delivery" && r.delivery.revision, first);
    });
    await t.step("conformance: never part of a revision (one bad file fails it all)", async () => {
      await u.publish({
        "policies/c.yaml": POLICY("c"),
        "policies/d.yaml": new Uint8Array([0x2d, 0x20, 0xff, 0x0a]),
      });
      const r = await u.source.check();
      assert.equal(r.kind, "failure", JSON.stringify(r));
      assert.match(JSON.stringify(r), /not UTF-8/);
    });
    await t.step("conformance: watch reports a change by itself", async () => {
      const seen = new Promise<SourceCheck>((resolve) => {
        u.source.watch((r) => r.kind === "delivery" && resolve(r));
      });
      await u.publish({ "policies/e.yaml": POLICY("e") });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        seen,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("no delivery within 10 s")), 10_000);
        }),
      ]).finally(() => clearTimeout(timer));
      assert.deepEqual(delivered(r), { "policies:e.yaml": POLICY("e") });
    });
  } finally {
    await u.source.dispose?.();
    await u.cleanup();
  }
}
