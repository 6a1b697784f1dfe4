import assert from "node:assert/strict";
import { formatProblem } from "../errors.ts";
import { parseServiceFile } from "./parse_service.ts";

Deno.test("parseServiceFile", async (t) => {
  await t.step("normalises labels to name=value with numbers as written", () => {
    const { services, problems } = parseServiceFile(
      "s.yaml",
      `- addresses:
    - address: localhost
      port: 8000
      tags: [joska]
    - {address: "::1", port: 8001}
  labels:
    app:label: nginx
    app:version: 1.50
`,
    );
    assert.deepEqual(problems, []);
    assert.deepEqual(services, [{
      file: "s.yaml",
      item: 0,
      line: 1,
      service: {
        addresses: [
          { address: "localhost", port: 8000, line: 2 },
          { address: "::1", port: 8001, line: 5 },
        ],
        labels: ["app:label=nginx", "app:version=1.50"],
      },
    }]);
  });
  await t.step("does not expand templates (services have none)", () => {
    const { problems } = parseServiceFile(
      "s.yaml",
      "- addresses: [{address: 10.0.0.1, port: 1}]\n  labels: {a: '{{.TrustDomain}}'}\n",
    );
    assert.deepEqual(problems, []);
  });
  await t.step("reports problems with file, item, line and field", () => {
    const { problems } = parseServiceFile(
      "s.yaml",
      `- addresses: [{address: 10.0.0.1, port: 1}]
  labels: {a: b}
- addresses:
    - address: 10.0.0.1
      port: 70000
  labels: {-bad: x}
`,
    );
    assert.deepEqual(problems.map(formatProblem), [
      "s.yaml:5: item 1: addresses[0].port: port number 70000 is outside 1..65535",
      's.yaml:6: item 1: labels["-bad"]: label name "-bad" must match ^[A-Za-z0-9]([A-Za-z0-9_:-]*[A-Za-z0-9])?$',
    ]);
  });
  await t.step("a top level that is not a list is a problem", () => {
    const { problems } = parseServiceFile("s.yaml", "addresses: []\n");
    assert.equal(
      formatProblem(problems[0]!),
      's.yaml:1: expected a list of service items ("- ..."), got a map',
    );
  });
});
