import assert from "node:assert/strict";
import { renderTemplate } from "./template.ts";

const td = { TrustDomain: "acme.corp" };

Deno.test("renderTemplate", async (t) => {
  await t.step("replaces {{.TrustDomain}} with or without inner spaces", () => {
    const r = renderTemplate(
      'a: "spiffe://{{.TrustDomain}}/x"\nb: spiffe://{{ .TrustDomain }}/y\n',
      td,
    );
    assert.deepEqual(r.problems, []);
    assert.equal(r.text, 'a: "spiffe://acme.corp/x"\nb: spiffe://acme.corp/y\n');
  });
  await t.step("leaves text without actions untouched", () => {
    assert.deepEqual(renderTemplate("a: {b: c}\n", td), { text: "a: {b: c}\n", problems: [] });
  });
  await t.step("reports every other action with its line", () => {
    const r = renderTemplate("a: 1\nb: {{.Foo}}\nc: {{ if .X }}y{{ end }}\n", td);
    assert.deepEqual(r.problems.map((p) => p.line), [2, 3, 3]);
    assert.match(r.problems[0]!.message, /unsupported template action "\{\{\.Foo\}\}"/);
    assert.match(r.problems[1]!.message, /\{\{ if \.X \}\}/);
  });
  await t.step("reports an unclosed action", () => {
    const r = renderTemplate("a: 1\n\nb: {{.TrustDomain\n", td);
    assert.deepEqual(r.problems, [{
      line: 3,
      offset: 9,
      message: 'unclosed template action: "{{" without "}}"',
    }]);
  });
  await t.step("keeps line numbers (replacements have no newline)", () => {
    const src = "x: {{.TrustDomain}}\ny: 2\n";
    assert.equal(renderTemplate(src, td).text.split("\n").length, src.split("\n").length);
  });
});
