import assert from "node:assert/strict";
import { indexLabels, substituteWorkloadId } from "./match_placeholders.ts";

Deno.test("indexLabels groups values by name, with the kernel's quirks", () => {
  const idx = indexLabels(["a=1", "a=2", "b=x=y", "flag", "same=same", "=v"]);
  assert.deepEqual([...idx.get("a")!], ["1", "2"]);
  assert.deepEqual([...idx.get("b")!], ["x=y"]);
  assert.deepEqual([...idx.get("flag")!], [""]);
  assert.equal(idx.has("same"), false);
  assert.deepEqual([...idx.get("")!], ["v"]);
});

Deno.test("substituteWorkloadId", async (t) => {
  await t.step("no placeholder: unchanged", () => {
    assert.deepEqual(substituteWorkloadId("plain/id", indexLabels(["a=1"])), {
      workloadID: "plain/id",
      placeholders: [],
      unresolved: [],
      orderDependent: false,
    });
  });
  await t.step("every occurrence of a placeholder is replaced", () => {
    assert.equal(substituteWorkloadId("[a]/[a]", indexLabels(["a=1"])).workloadID, "1/1");
  });
  await t.step("old [[name]] syntax keeps the outer brackets, as in the kernel", () => {
    assert.equal(substituteWorkloadId("[[a]]", indexLabels(["a=1"])).workloadID, "[1]");
  });
  await t.step("remote single values win; remote ambiguity falls back to local", () => {
    const r = substituteWorkloadId(
      "[a]/[b]",
      indexLabels(["a=local", "b=local"]),
      indexLabels(["a=remote", "b=r1", "b=r2"]),
    );
    assert.equal(r.workloadID, "remote/local");
  });
  await t.step("a value containing a placeholder is flagged as order-dependent", () => {
    const r = substituteWorkloadId("[a]/[b]", indexLabels(["a=[b]", "b=2"]));
    assert.equal(r.orderDependent, true);
  });
});
