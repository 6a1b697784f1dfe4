import assert from "node:assert/strict";
import { formatProblem } from "../errors.ts";
import { MAX_SELECTOR_PRODUCT, parsePolicyFile } from "./parse_policy.ts";

const opts = { trustDomain: "acme.corp" };

Deno.test("parsePolicyFile", async (t) => {
  await t.step("normalises a policy to what the kernel reads", () => {
    const { policies, problems } = parsePolicyFile(
      "p.yaml",
      `# comment
- selectors:
    - process:uid: [501, 1001, 501]
      app:version: 1.50
  certificate:
    workloadID: web/[process:uid]
    dnsNames: []
    ttl: 1h30m
  connection:
    mtls: UNSET
    passthrough: false
    allowedSPIFFEIDs: ["spiffe://{{.TrustDomain}}/curl"]
    http: false
  egress:
    - selectors: [{}]
      certificate: { workloadID: out, ttl: 1.5s }
      connection: { mtls: DISABLE, passthrough: true, http: true }
`,
      opts,
    );
    assert.deepEqual(problems, []);
    assert.deepEqual(policies, [{
      file: "p.yaml",
      item: 0,
      line: 2,
      policy: {
        selectors: [[["process:uid", ["501", "1001"]], ["app:version", ["1.50"]]]],
        certificate: { workloadID: "web/[process:uid]", ttl: "5400s" },
        connection: { allowedSPIFFEIDs: ["spiffe://acme.corp/curl"] },
        egress: [{
          line: 15,
          selectors: [[]],
          certificate: { workloadID: "out", ttl: "2s" },
          connection: { mtls: "DISABLE", passthrough: true, http: true },
        }],
      },
    }]);
  });
  await t.step("drops a connection block that only holds zero values", () => {
    const { policies } = parsePolicyFile(
      "p.yaml",
      "- selectors: [{a: b}]\n  certificate: {workloadID: w}\n  connection: {mtls: UNSET}\n",
      opts,
    );
    assert.equal(policies[0]!.policy.connection, undefined);
  });
  await t.step("an empty file is an empty list", () => {
    assert.deepEqual(parsePolicyFile("p.yaml", "", opts), { policies: [], problems: [] });
    assert.deepEqual(parsePolicyFile("p.yaml", "[]\n", opts), { policies: [], problems: [] });
  });
  await t.step("reports every problem of every item, in line order", () => {
    const { problems } = parsePolicyFile(
      "p.yaml",
      `- selectors: [{a: true}]
  certificate: {workloadID: ok}
- selectors: [{a: b}]
  certificate: {workloadID: "a//b", ttl: 0s}
`,
      opts,
    );
    assert.deepEqual(problems.map(formatProblem), [
      'p.yaml:1: item 0: selectors[0].a: selector value is boolean true; it must be a string, a number or a list of them (quote it: "true")',
      'p.yaml:4: item 1: certificate.workloadID: path "a//b" has an empty segment',
      'p.yaml:4: item 1: certificate.ttl: TTL "0s" must be longer than zero',
    ]);
  });
  await t.step("refuses a selector map that expands too far", () => {
    const values = (n: number) => `[${Array.from({ length: n }, (_, i) => i).join(",")}]`;
    const { problems } = parsePolicyFile(
      "p.yaml",
      `- selectors: [{a: ${values(100)}, b: ${values(100)}}]\n  certificate: {workloadID: w}\n`,
      opts,
    );
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.field, "selectors[0]");
    assert.match(
      problems[0]!.message,
      new RegExp(`10000 combinations \\(more than ${MAX_SELECTOR_PRODUCT}\\)`),
    );
  });
  await t.step("template problems stop the file, located by line, item and field", () => {
    const { policies, problems } = parsePolicyFile(
      "p.yaml",
      "- selectors: [{a: b}]\n  certificate: {workloadID: '{{.Name}}'}\n",
      opts,
    );
    assert.deepEqual(policies, []);
    assert.equal(
      formatProblem(problems[0]!),
      'p.yaml:2: item 0: certificate.workloadID: unsupported template action "{{.Name}}": only {{.TrustDomain}} is supported',
    );
  });
});
