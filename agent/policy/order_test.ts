import assert from "node:assert/strict";
import { specificityOrder } from "./order.ts";

Deno.test("specificityOrder", async (t) => {
  await t.step("keeps input order when nothing contains anything", () => {
    assert.deepEqual(specificityOrder([[["a=1"]], [["b=1"]], [["c=1"]]]), [0, 1, 2]);
  });
  await t.step("a strict superset comes first, transitively", () => {
    // 0 ⊂ 1 ⊂ 2
    assert.deepEqual(
      specificityOrder([[["a=1"]], [["a=1", "b=2"]], [["a=1", "b=2", "c=3"]]]),
      [2, 1, 0],
    );
  });
  await t.step("equal sets are not ordered by content", () => {
    assert.deepEqual(specificityOrder([[["a=1", "b=2"]], [["b=2", "a=1"]]]), [0, 1]);
  });
  await t.step("the match-all set comes after everything it contains", () => {
    assert.deepEqual(specificityOrder([[[]], [["a=1"]], [["b=1"]]]), [1, 2, 0]);
  });
  await t.step("only the needed moves happen; other ties keep input order", () => {
    // 3 ⊃ 0; 1 and 2 are unrelated to both.
    assert.deepEqual(
      specificityOrder([[["a=1"]], [["x=1"]], [["y=1"]], [["a=1", "z=1"]]]),
      [1, 2, 3, 0],
    );
  });
  await t.step("any set of a policy may contain any set of another", () => {
    assert.deepEqual(specificityOrder([[["q=1"], ["a=1"]], [["z=9"], ["a=1", "b=1"]]]), [1, 0]);
  });
  await t.step("a cycle stays together in input order, and its constraints hold", () => {
    // 1 has {a,b} ⊃ 2's {a}; 2 has {c,d} ⊃ 1's {c}: a cycle. 0 = {a,b,c,d,e} contains both,
    // 3 = {} is contained by all, 4 is unrelated.
    const cyc = [
      [["a=1", "b=1", "c=1", "d=1", "e=1"]],
      [["a=1", "b=1"], ["c=1"]],
      [["a=1"], ["c=1", "d=1"]],
      [[]],
      [["x=1"]],
    ];
    assert.deepEqual(specificityOrder(cyc), [0, 1, 2, 4, 3]);
    // Moving the unrelated policy first does not split the cycle.
    assert.deepEqual(specificityOrder([cyc[4]!, cyc[1]!, cyc[2]!]), [0, 1, 2]);
    assert.deepEqual(specificityOrder([cyc[2]!, cyc[1]!]), [0, 1]);
  });
  await t.step("is a permutation for many policies", () => {
    const n = 2000;
    const input = Array.from(
      { length: n },
      (_, i) => [[`k=${i % 50}`, ...(i % 3 ? [`x=${i}`] : [])]],
    );
    const out = specificityOrder(input);
    assert.deepEqual([...out].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
    const pos = new Map(out.map((p, i) => [p, i]));
    // Every {k, x} policy precedes every {k} policy with the same k.
    for (let i = 0; i < n; i++) {
      if (i % 3 === 0) continue;
      for (let j = i % 50; j < n; j += 50) {
        if (j % 3 === 0) assert.ok(pos.get(i)! < pos.get(j)!, `${i} before ${j}`);
      }
    }
  });
});
