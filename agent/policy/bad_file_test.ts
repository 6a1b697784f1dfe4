/** File-level problems (syntax, encoding, shape) are reported with file and line; nothing loads. */
import assert from "node:assert/strict";
import { loadPayloads } from "../cli/load_payloads.ts";
import { formatProblem, ValidationError } from "../errors.ts";
import { configFor, OK_POLICY, p, resolver, s, tempLayout } from "./_bad_input.ts";

Deno.test("file-level problems are reported with file and line, and nothing loads", async (t) => {
  const cases: [
    name: string,
    bytes: string | Uint8Array,
    line: number | undefined,
    message: RegExp,
  ][] = [
    ["YAML syntax error", "- selectors: [{a: b}\n  certificate: {workloadID: w}\n", 2, /YAML: /],
    [
      "duplicate key",
      "- selectors: [{a: b}]\n  certificate: {workloadID: w}\n  selectors: [{}]\n",
      3,
      /unique/,
    ],
    [
      "top level is a map",
      "selectors: [{a: b}]\ncertificate: {workloadID: w}\n",
      1,
      /expected a list of policy items/,
    ],
    ["several YAML documents", OK_POLICY + "---\n" + OK_POLICY, 3, /YAML: /],
    [
      "alias bomb",
      [
        "a0: &a0 [x, x, x, x, x, x, x, x, x, x]",
        ...Array.from(
          { length: 6 },
          (_, i) => `a${i + 1}: &a${i + 1} [${Array(10).fill(`*a${i}`).join(", ")}]`,
        ),
      ].join("\n") + "\n",
      undefined,
      /alias/,
    ],
    ["not UTF-8", new Uint8Array([0x2d, 0x20, 0xff, 0xfe, 0x0a]), 1, /not UTF-8/],
  ];
  for (const [name, bytes, line, message] of cases) {
    await t.step(name, async () => {
      const dir = await tempLayout("policies", "");
      try {
        const file = `${dir}/policies/zz-bad.yaml`;
        if (typeof bytes === "string") await Deno.writeTextFile(file, bytes);
        else await Deno.writeFile(file, bytes);
        const outcome = await loadPayloads(configFor(dir), { resolver }).then((r) => r, (e) => e);
        assert.ok(outcome instanceof ValidationError);
        const hit = outcome.problems.find((x) => x.file === file);
        assert.ok(hit, outcome.message);
        assert.equal(hit.line, line, formatProblem(hit));
        assert.match(hit.message, message);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
});

Deno.test("problems in several files are all reported at once", async () => {
  const dir = await tempLayout(
    "policies",
    p("- selectors: [{a: true}]\n  certificate: {workloadID: w}\n"),
  );
  try {
    await Deno.writeTextFile(
      `${dir}/policies/aa-bad.yaml`,
      "- selectors: [{a: b}]\n  certificate: {workloadID: w, ttl: 0}\n",
    );
    await Deno.writeTextFile(
      `${dir}/services/zz-bad.yaml`,
      s("- addresses: [{address: x.invalid, port: 1}]\n  labels: {}\n"),
    );
    const outcome = await loadPayloads(configFor(dir), { resolver }).then((r) => r, (e) => e);
    assert.ok(outcome instanceof ValidationError);
    assert.deepEqual(
      outcome.problems.map((
        x: { file?: string; field?: string },
      ) => [x.file!.slice(dir.length), x.field]),
      [
        ["/policies/aa-bad.yaml", "certificate.ttl"],
        ["/policies/zz-bad.yaml", "selectors[0].a"],
        ["/services/zz-bad.yaml", "addresses[0].address"],
      ],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
