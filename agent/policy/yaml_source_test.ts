import assert from "node:assert/strict";
import { MAX_ALIAS_COUNT, parseYamlSource } from "./yaml_source.ts";

Deno.test("parseYamlSource", async (t) => {
  await t.step("gives values, lines of keys and literal number text", () => {
    const { source, problems } = parseYamlSource("- a: 1.50\n  b:\n    - 0x1F\n    - x\n");
    assert.deepEqual(problems, []);
    assert.deepEqual(source!.value, [{ a: 1.5, b: [31, "x"] }]);
    assert.equal(source!.literalOf([0, "a"]), "1.50");
    assert.equal(source!.literalOf([0, "b", 0]), "0x1F");
    assert.equal(source!.lineOf([0, "b"]), 2);
    assert.equal(source!.lineOf([0, "b", 1]), 4);
    // A missing path gives the nearest ancestor's line.
    assert.equal(source!.lineOf([0, "b", 7]), 2);
    assert.equal(source!.lineOf([0, "nope", "x"]), 1);
  });
  await t.step("JSON is YAML", () => {
    const { source } = parseYamlSource('[\n  {"a": 8000}\n]\n');
    assert.deepEqual(source!.value, [{ a: 8000 }]);
    assert.equal(source!.lineOf([0, "a"]), 2);
    assert.equal(source!.literalOf([0, "a"]), "8000");
  });
  await t.step("follows aliases", () => {
    const { source } = parseYamlSource("x: &v 1.0\ny: *v\n");
    assert.equal(source!.literalOf(["y"]), "1.0");
  });
  await t.step("an empty file is null", () => {
    assert.equal(parseYamlSource("").source!.value, null);
    assert.equal(parseYamlSource("# only a comment\n").source!.value, null);
  });
  await t.step("syntax errors and duplicate keys are problems with lines", () => {
    assert.deepEqual(parseYamlSource("a: 1\nb: [\n").problems.length > 0, true);
    const dup = parseYamlSource("a: 1\nb: 2\na: 3\n").problems;
    assert.equal(dup.length, 1);
    assert.equal(dup[0]!.line, 3);
    assert.match(dup[0]!.message, /unique/);
  });
  await t.step("several documents and unknown tags are problems", () => {
    assert.match(parseYamlSource("a: 1\n---\nb: 2\n").problems[0]!.message, /YAML/);
    assert.match(parseYamlSource("a: !foo x\n").problems[0]!.message, /tag/i);
  });
  await t.step("alias bombs are refused", () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 0; i < 8; i++) {
      const p = String.fromCharCode(97 + i), n = String.fromCharCode(98 + i);
      lines.push(`${n}: &${n} [${Array(10).fill(`*${p}`).join(",")}]`);
    }
    const { source, problems } = parseYamlSource(lines.join("\n") + "\n");
    assert.equal(source, undefined);
    assert.match(problems[0]!.message, new RegExp(`at most ${MAX_ALIAS_COUNT} alias`));
  });
});

Deno.test("pathAt finds the value or key written at an offset", () => {
  const text = "- a: x\n  b:\n    - c: 'y{{z}}'\n";
  const { source } = parseYamlSource(text);
  assert.deepEqual(source!.pathAt(text.indexOf("{{")), [0, "b", 0, "c"]);
  assert.deepEqual(source!.pathAt(text.indexOf("a:")), [0, "a"]);
  assert.deepEqual(source!.pathAt(text.indexOf("x")), [0, "a"]);
  assert.equal(source!.pathAt(text.length + 5), undefined);
});
