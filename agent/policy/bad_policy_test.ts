/** Every kind of bad policy item is rejected with file, item and field, and nothing loads. */
import assert from "node:assert/strict";
import { type Case, expectRejected, many, p } from "./_bad_input.ts";

const CASES: Case[] = [
  // Selectors: the Go agent dropped booleans, nulls and maps silently.
  {
    name: "boolean selector value",
    kind: "policies",
    yaml: p("- selectors: [{docker:image:name:nginx: true}]\n  certificate: {workloadID: w}\n"),
    item: 1,
    field: 'selectors[0]["docker:image:name:nginx"]',
    message: /selector value is boolean true/,
  },
  {
    name: "null selector value",
    kind: "policies",
    yaml: p("- selectors: [{process:name: }]\n  certificate: {workloadID: w}\n"),
    item: 1,
    field: 'selectors[0]["process:name"]',
    message: /selector value is null/,
  },
  {
    name: "nested map selector value",
    kind: "policies",
    yaml: p("- selectors: [{k8s: {pod: web}}]\n  certificate: {workloadID: w}\n"),
    item: 1,
    field: "selectors[0].k8s",
    message: /selector value is a map/,
  },
  {
    name: "boolean inside a selector list",
    kind: "policies",
    yaml: p("- selectors: [{process:uid: [501, false]}]\n  certificate: {workloadID: w}\n"),
    item: 1,
    field: 'selectors[0]["process:uid"][1]',
    message: /list item 1 is boolean false/,
  },
  {
    name: "empty selector list",
    kind: "policies",
    yaml: p("- selectors: [{process:uid: []}]\n  certificate: {workloadID: w}\n"),
    item: 1,
    field: 'selectors[0]["process:uid"]',
    message: /empty list matches nothing/,
  },
  {
    name: "selector name with =",
    kind: "policies",
    yaml: p('- selectors: [{"process:name=curl": x}]\n  certificate: {workloadID: w}\n'),
    item: 1,
    field: 'selectors[0]["process:name=curl"]',
    message: /"process:name=curl" must not contain "="/,
  },
  {
    name: "empty selector name",
    kind: "policies",
    yaml: p('- selectors: [{"": x}]\n  certificate: {workloadID: w}\n'),
    item: 1,
    field: 'selectors[0][""]',
    message: /selector label name is empty/,
  },
  {
    name: "selectors missing",
    kind: "policies",
    yaml: p("- certificate: {workloadID: w}\n"),
    item: 1,
    field: "selectors",
    message: /^required$/,
  },
  {
    name: "selectors an empty list",
    kind: "policies",
    yaml: p("- selectors: []\n  certificate: {workloadID: w}\n"),
    item: 1,
    field: "selectors",
    message: /at least one selector map/,
  },
  {
    name: "selectors a map, not a list",
    kind: "policies",
    yaml: p("- selectors: {process:name: x}\n  certificate: {workloadID: w}\n"),
    item: 1,
    field: "selectors",
    message: /expected array, got a map/,
  },
  {
    name: "selector map too large",
    kind: "policies",
    yaml: p(
      `- selectors: [{a: [${many(70, (i) => String(i))}], b: [${
        many(70, (i) => String(i))
      }]}]\n  certificate: {workloadID: w}\n`,
    ),
    item: 1,
    field: "selectors[0]",
    message: /4900 combinations/,
  },
  // Unknown fields (the out-of-date camblet.io page used dns and rules).
  {
    name: "unknown policy field",
    kind: "policies",
    yaml: p("- selectors: [{a: b}]\n  certificate: {workloadID: w}\n  rules: []\n"),
    item: 1,
    field: "rules",
    message: /unknown field "rules"/,
  },
  {
    name: "unknown certificate field",
    kind: "policies",
    yaml: p("- selectors: [{a: b}]\n  certificate: {workloadID: w, dns: [a.b]}\n"),
    item: 1,
    field: "certificate.dns",
    message: /unknown field "dns"/,
  },
  {
    name: "unknown connection field",
    kind: "policies",
    yaml: p(
      "- selectors: [{a: b}]\n  certificate: {workloadID: w}\n  connection: {mTLS: STRICT}\n",
    ),
    item: 1,
    field: "connection.mTLS",
    message: /unknown field "mTLS"/,
  },
  // Certificate.
  {
    name: "certificate missing",
    kind: "policies",
    yaml: p("- selectors: [{a: b}]\n"),
    item: 1,
    field: "certificate",
    message: /^required$/,
  },
  {
    name: "workloadID missing",
    kind: "policies",
    yaml: p("- selectors: [{a: b}]\n  certificate: {ttl: 1h}\n"),
    item: 1,
    field: "certificate.workloadID",
    message: /^required$/,
  },
  {
    name: "workloadID with an empty segment",
    kind: "policies",
    yaml: p("- selectors: [{a: b}]\n  certificate: {workloadID: a//b}\n"),
    item: 1,
    field: "certificate.workloadID",
    message: /path "a\/\/b" has an empty segment/,
  },
  {
    name: "workloadID with ..",
    kind: "policies",
    yaml: p("- selectors: [{a: b}]\n  certificate: {workloadID: a/../b}\n"),
    item: 1,
    field: "certificate.workloadID",
    message: /has a "\.\." segment/,
  },
  {
    name: "workloadID with a bad character",
    kind: "policies",
    yaml: p("- selectors: [{a: b}]\n  certificate: {workloadID: 'web app'}\n"),
    item: 1,
    field: "certificate.workloadID",
    message: /segment "web app" may contain only/,
  },
  {
    name: "ttl the kernel cannot read",
    kind: "policies",
    yaml: p("- selectors: [{a: b}]\n  certificate: {workloadID: w, ttl: 8 hours}\n"),
    item: 1,
    field: "certificate.ttl",
    message: /Cannot parse duration "8 hours"/,
  },
  {
    name: "zero ttl",
    kind: "policies",
    yaml: p("- selectors: [{a: b}]\n  certificate: {workloadID: w, ttl: 0s}\n"),
    item: 1,
    field: "certificate.ttl",
    message: /TTL "0s" must be longer than zero/,
  },
  {
    name: "negative ttl",
    kind: "policies",
    yaml: p("- selectors: [{a: b}]\n  certificate: {workloadID: w, ttl: -1h}\n"),
    item: 1,
    field: "certificate.ttl",
    message: /Cannot parse duration "-1h"/,
  },
  {
    name: "ttl as a bare number",
    kind: "policies",
    yaml: p("- selectors: [{a: b}]\n  certificate: {workloadID: w, ttl: 3600}\n"),
    item: 1,
    field: "certificate.ttl",
    message: /expected string, got number 3600/,
  },
  {
    name: "dnsNames entry not a hostname",
    kind: "policies",
    yaml: p(
      "- selectors: [{a: b}]\n  certificate: {workloadID: w, dnsNames: [ok.test, bad_name.test]}\n",
    ),
    item: 1,
    field: "certificate.dnsNames[1]",
    message: /"bad_name.test" is not a hostname/,
  },
  {
    name: "duplicate dnsNames",
    kind: "policies",
    yaml: p("- selectors: [{a: b}]\n  certificate: {workloadID: w, dnsNames: [a.test, a.test]}\n"),
    item: 1,
    field: "certificate.dnsNames[1]",
    message: /duplicate DNS name "a.test"/,
  },
  // Connection.
  {
    name: "unknown mtls mode",
    kind: "policies",
    yaml: p(
      "- selectors: [{a: b}]\n  certificate: {workloadID: w}\n  connection: {mtls: PERMISSIVE}\n",
    ),
    item: 1,
    field: "connection.mtls",
    message: /mtls is "PERMISSIVE"; use STRICT, DISABLE or UNSET/,
  },
  {
    name: "passthrough not a boolean",
    kind: "policies",
    yaml: p(
      "- selectors: [{a: b}]\n  certificate: {workloadID: w}\n  connection: {passthrough: 'yes'}\n",
    ),
    item: 1,
    field: "connection.passthrough",
    message: /expected boolean, got "yes"/,
  },
  {
    name: "allowed SPIFFE ID without scheme",
    kind: "policies",
    yaml: p(
      "- selectors: [{a: b}]\n  certificate: {workloadID: w}\n  connection: {allowedSPIFFEIDs: ['spiffe//x']}\n",
    ),
    item: 1,
    field: "connection.allowedSPIFFEIDs[0]",
    message: /"spiffe\/\/x" is not a SPIFFE ID/,
  },
  {
    name: "allowed SPIFFE ID with an upper-case trust domain",
    kind: "policies",
    yaml: p(
      "- selectors: [{a: b}]\n  certificate: {workloadID: w}\n  connection: {allowedSPIFFEIDs: ['spiffe://ACME/x']}\n",
    ),
    item: 1,
    field: "connection.allowedSPIFFEIDs[0]",
    message: /"spiffe:\/\/ACME\/x" is not a SPIFFE ID: trust domain "ACME"/,
  },
  {
    name: "17 allowed SPIFFE IDs after templating",
    kind: "policies",
    yaml: p(
      `- selectors: [{a: b}]\n  certificate: {workloadID: w}\n  connection: {allowedSPIFFEIDs: [${
        many(17, (i) => `"spiffe://{{.TrustDomain}}/c${i}"`)
      }]}\n`,
    ),
    item: 1,
    field: "connection.allowedSPIFFEIDs",
    message: /at most 16 allowed SPIFFE IDs/,
  },
  {
    name: "duplicate allowed SPIFFE ID",
    kind: "policies",
    yaml: p(
      "- selectors: [{a: b}]\n  certificate: {workloadID: w}\n  connection: {allowedSPIFFEIDs: ['spiffe://t/a', 'spiffe://t/a']}\n",
    ),
    item: 1,
    field: "connection.allowedSPIFFEIDs[1]",
    message: /duplicate SPIFFE ID "spiffe:\/\/t\/a"/,
  },
  {
    name: "connection block left empty (null)",
    kind: "policies",
    yaml: p("- selectors: [{a: b}]\n  certificate: {workloadID: w}\n  connection:\n"),
    item: 1,
    field: "connection",
    message: /expected object, got null/,
  },
  // Egress.
  {
    name: "egress entry without selectors",
    kind: "policies",
    yaml: p(
      "- selectors: [{a: b}]\n  certificate: {workloadID: w}\n  egress:\n    - certificate: {workloadID: e}\n",
    ),
    item: 1,
    field: "egress[0].selectors",
    message: /^required$/,
  },
  {
    name: "egress nested in egress",
    kind: "policies",
    yaml: p(
      "- selectors: [{a: b}]\n  certificate: {workloadID: w}\n  egress:\n    - selectors: [{}]\n      certificate: {workloadID: e}\n      egress: []\n",
    ),
    item: 1,
    field: "egress[0].egress",
    message: /unknown field "egress"/,
  },
  {
    name: "egress boolean selector",
    kind: "policies",
    yaml: p(
      "- selectors: [{a: b}]\n  certificate: {workloadID: w}\n  egress:\n    - selectors: [{app:tls: yes}, {app:tls: true}]\n      certificate: {workloadID: e}\n",
    ),
    item: 1,
    field: 'egress[0].selectors[1]["app:tls"]',
    message: /boolean true/,
  },
  {
    name: "item not a map",
    kind: "policies",
    yaml: p("- just a string\n"),
    item: 1,
    field: "",
    message: /expected object, got "just a string"/,
  },
  // Typed labels: a value the label can never take validated as fine and never matched.
  {
    name: "destination:port out of range",
    kind: "policies",
    yaml: p("- selectors: [{destination:port: 80000}]\n  certificate: {workloadID: w}\n"),
    item: 1,
    field: 'selectors[0]["destination:port"]',
    message: /port 80000 is outside 1\.\.65535; it can never match/,
  },
  {
    name: "destination:port not a number",
    kind: "policies",
    yaml: p('- selectors: [{destination:port: "eighty"}]\n  certificate: {workloadID: w}\n'),
    item: 1,
    field: 'selectors[0]["destination:port"]',
    message: /port "eighty" is not a whole number \(1\.\.65535\)/,
  },
  {
    name: "source:port in a list, zero",
    kind: "policies",
    yaml: p("- selectors: [{source:port: [443, 0]}]\n  certificate: {workloadID: w}\n"),
    item: 1,
    field: 'selectors[0]["source:port"][1]',
    message: /port 0 is outside 1\.\.65535/,
  },
  {
    name: "process:uid negative",
    kind: "policies",
    yaml: p("- selectors: [{process:uid: -1}]\n  certificate: {workloadID: w}\n"),
    item: 1,
    field: 'selectors[0]["process:uid"]',
    message: /uid "-1" is not a whole number \(0\.\.4294967294\)/,
  },
  {
    name: "process:gid a name",
    kind: "policies",
    yaml: p("- selectors: [{}, {process:gid: [0, wheel]}]\n  certificate: {workloadID: w}\n"),
    item: 1,
    field: 'selectors[1]["process:gid"][1]',
    message: /gid "wheel" is not a whole number/,
  },
  {
    name: "process:uid:effective fractional",
    kind: "policies",
    yaml: p("- selectors: [{process:uid:effective: 1000.5}]\n  certificate: {workloadID: w}\n"),
    item: 1,
    field: 'selectors[0]["process:uid:effective"]',
    message: /uid "1000\.5" is not a whole number/,
  },
  {
    name: "destination:ip a CIDR range",
    kind: "policies",
    yaml: p("- selectors: [{destination:ip: 10.0.0.0/8}]\n  certificate: {workloadID: w}\n"),
    item: 1,
    field: 'selectors[0]["destination:ip"]',
    message: /"10\.0\.0\.0\/8" is not an IPv4 or IPv6 address; selectors match one address exactly/,
  },
  {
    name: "source:ip not an address",
    kind: "policies",
    yaml: p("- selectors: [{source:ip: 256.1.1.1}]\n  certificate: {workloadID: w}\n"),
    item: 1,
    field: 'selectors[0]["source:ip"]',
    message: /"256\.1\.1\.1" is not an IPv4 or IPv6 address/,
  },
  // Templates: the Go agent fell back to the raw text silently.
  {
    name: "unsupported template action",
    kind: "policies",
    yaml: p("- selectors: [{a: b}]\n  certificate: {workloadID: '{{.Name}}'}\n"),
    item: 1,
    field: "certificate.workloadID",
    message:
      /unsupported template action "\{\{\.Name\}\}": only \{\{\.TrustDomain\}\} is supported/,
  },
  {
    name: "unclosed template action",
    kind: "policies",
    yaml: p("- selectors: [{a: '{{.TrustDomain'}]\n  certificate: {workloadID: w}\n"),
    item: 1,
    field: "selectors[0].a",
    message: /unclosed template action/,
  },
];

Deno.test("bad policies are rejected with file, item and field, and nothing loads", async (t) => {
  assert.ok(new Set(CASES.map((c) => c.name)).size >= 30);
  for (const c of CASES) await t.step(c.name, () => expectRejected(c));
});

Deno.test("typed selector values that can match compile as the kernel prints them", async () => {
  const { parsePolicyFile } = await import("./parse_policy.ts");
  const { policies, problems } = parsePolicyFile(
    "ok.yaml",
    "- selectors: [{destination:port: [8000, '443'], destination:ip: '::1', process:uid: 0}]\n" +
      "  certificate: {workloadID: w}\n" +
      "  egress:\n    - selectors: [{destination:port: any-label-value}]\n" +
      "      certificate: {workloadID: e}\n",
    { trustDomain: "acme.test" },
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(policies[0]!.policy.selectors, [[
    ["destination:port", ["8000", "443"]],
    ["destination:ip", ["0000:0000:0000:0000:0000:0000:0000:0001"]],
    ["process:uid", ["0"]],
  ]]);
  // Egress selectors match service labels, which are free-form: not checked.
  assert.deepEqual(policies[0]!.policy.egress![0]!.selectors, [[
    ["destination:port", ["any-label-value"]],
  ]]);
});
