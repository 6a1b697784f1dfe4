import assert from "node:assert/strict";
import { z } from "zod";
import { formatPath, issuesToProblems } from "./problems.ts";
import { formatProblem } from "./errors.ts";

Deno.test("formatPath quotes odd keys", () => {
  assert.equal(formatPath(["a", 0, "b"]), "a[0].b");
  assert.equal(formatPath(["labels", "app:label"]), 'labels["app:label"]');
});

Deno.test("issuesToProblems names file, item, field and the value", () => {
  const schema = z.object({ a: z.string(), n: z.object({}).strict() }).strict();
  const input = { a: true, n: { x: 1 }, extra: 1 };
  const r = schema.safeParse(input);
  assert.ok(!r.success);
  const lines = issuesToProblems(r.error.issues, { file: "p.yaml", item: 3 }, { input })
    .map(formatProblem).sort();
  assert.deepEqual(lines, [
    "p.yaml: item 3: a: expected string, got boolean true",
    'p.yaml: item 3: extra: unknown field "extra"',
    'p.yaml: item 3: n.x: unknown field "x"',
  ]);
});
