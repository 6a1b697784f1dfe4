import assert from "node:assert/strict";
import { expandSelectorMap, expandSelectors } from "./selectors.ts";

Deno.test("expandSelectorMap", async (t) => {
  await t.step("expands lists into their cartesian product, keys in written order", () => {
    assert.deepEqual(
      expandSelectorMap([["uid", ["501", "1001"]], ["name", ["a", "b"]], ["port", ["8000"]]]),
      [
        { "uid=501": true, "name=a": true, "port=8000": true },
        { "uid=501": true, "name=b": true, "port=8000": true },
        { "uid=1001": true, "name=a": true, "port=8000": true },
        { "uid=1001": true, "name=b": true, "port=8000": true },
      ],
    );
    assert.deepEqual(
      Object.keys(expandSelectorMap([["z", ["1"]], ["a", ["2"]]])[0]!),
      ["z=1", "a=2"],
    );
  });
  await t.step("an empty map is one empty set (matches everything)", () => {
    assert.deepEqual(expandSelectorMap([]), [{}]);
  });
});

Deno.test("expandSelectors drops repeated sets across maps", () => {
  assert.deepEqual(
    expandSelectors([[["a", ["1"]], ["b", ["2"]]], [["b", ["2"]], ["a", ["1"]]], [["c", ["3"]]]]),
    [{ "a=1": true, "b=2": true }, { "c=3": true }],
  );
});
