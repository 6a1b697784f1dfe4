import assert from "node:assert/strict";
import { closest, editDistance } from "./suggest.ts";

const NAMES = ["run", "agent", "status", "trace", "sources", "validate", "explain", "schema"];

Deno.test("editDistance counts a transposition as one edit", () => {
  assert.equal(editDistance("stauts", "status"), 1);
  assert.equal(editDistance("status", "status"), 0);
  assert.equal(editDistance("", "run"), 3);
});

Deno.test("closest suggests near names only", () => {
  assert.equal(closest("stauts", NAMES), "status");
  assert.equal(closest("valdiate", NAMES), "validate");
  assert.equal(closest("tarce", NAMES), "trace");
  assert.equal(closest("xyz", NAMES), undefined);
  assert.equal(closest("banana", NAMES), undefined);
});
