import assert from "node:assert/strict";
import { skip } from "./_skip.ts";

Deno.test("skip prints its reason once, with the calling file, and only when skipping", () => {
  const lines: string[] = [];
  const original = console.error;
  console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    assert.equal(skip(false), false);
    assert.equal(skip(undefined), false);
    assert.equal(skip(""), false);
    assert.equal(skip("needs a thing"), true);
    assert.equal(skip("needs a thing"), true);
  } finally {
    console.error = original;
  }
  assert.deepEqual(lines, ["SKIP tests/_skip_test.ts: needs a thing"]);
});
