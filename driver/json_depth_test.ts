import assert from "node:assert/strict";
import { jsonDeeperThan } from "./json_depth.ts";

Deno.test("jsonDeeperThan", () => {
  const response = JSON.stringify({
    jsonrpc: "2.0",
    id: 7,
    result: { certificate: "AAAA", chain: ["BB"], trustAnchors: ["CC"] },
  });
  assert.equal(jsonDeeperThan(response, 3), false);
  assert.equal(jsonDeeperThan(response, 2), true);
  assert.equal(jsonDeeperThan('["[[[[", "\\"[[[["]', 1), false, "brackets in strings, escapes");
  assert.equal(jsonDeeperThan("[".repeat(1000) + "]".repeat(1000), 64), true);
  assert.equal(jsonDeeperThan("[".repeat(64) + "]".repeat(64), 64), false);
});
