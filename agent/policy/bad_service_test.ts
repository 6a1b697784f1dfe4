/** Every kind of bad service item is rejected with file, item and field, and nothing loads. */
import assert from "node:assert/strict";
import { type Case, expectRejected, many, s } from "./_bad_input.ts";

const CASES: Case[] = [
  {
    name: "service port missing",
    kind: "services",
    yaml: s("- addresses: [{address: 10.0.0.2}]\n  labels: {a: b}\n"),
    item: 1,
    field: "addresses[0].port",
    message: /^required$/,
  },
  {
    name: "service port 0",
    kind: "services",
    yaml: s("- addresses: [{address: 10.0.0.2, port: 0}]\n  labels: {a: b}\n"),
    item: 1,
    field: "addresses[0].port",
    message: /port number 0 is outside 1..65535/,
  },
  {
    name: "service port 65536",
    kind: "services",
    yaml: s("- addresses: [{address: 10.0.0.2, port: 65536}]\n  labels: {a: b}\n"),
    item: 1,
    field: "addresses[0].port",
    message: /outside 1..65535/,
  },
  {
    name: "service port not whole",
    kind: "services",
    yaml: s("- addresses: [{address: 10.0.0.2, port: 80.5}]\n  labels: {a: b}\n"),
    item: 1,
    field: "addresses[0].port",
    message: /expected int, got number 80.5/,
  },
  {
    name: "service port as a string",
    kind: "services",
    yaml: s("- addresses: [{address: 10.0.0.2, port: '80'}]\n  labels: {a: b}\n"),
    item: 1,
    field: "addresses[0].port",
    message: /expected number, got "80"/,
  },
  {
    name: "service address missing",
    kind: "services",
    yaml: s("- addresses: [{port: 80}]\n  labels: {a: b}\n"),
    item: 1,
    field: "addresses[0].address",
    message: /^required$/,
  },
  {
    name: "service address out of range",
    kind: "services",
    yaml: s("- addresses: [{address: 300.1.1.1, port: 80}]\n  labels: {a: b}\n"),
    item: 1,
    field: "addresses[0].address",
    message: /"300.1.1.1" is neither an IP address nor a hostname/,
  },
  {
    name: "service address with a port",
    kind: "services",
    yaml: s("- addresses: [{address: '127.0.0.1:8000', port: 8000}]\n  labels: {a: b}\n"),
    item: 1,
    field: "addresses[0].address",
    message: /includes a port/,
  },
  {
    name: "service address with an IPv6 zone",
    kind: "services",
    yaml: s("- addresses: [{address: 'fe80::1%eth0', port: 80}]\n  labels: {a: b}\n"),
    item: 1,
    field: "addresses[0].address",
    message: /zone id/,
  },
  {
    name: "service without addresses",
    kind: "services",
    yaml: s("- addresses: []\n  labels: {a: b}\n"),
    item: 1,
    field: "addresses",
    message: /at least one address/,
  },
  {
    name: "service labels missing",
    kind: "services",
    yaml: s("- addresses: [{address: 10.0.0.2, port: 80}]\n"),
    item: 1,
    field: "labels",
    message: /^required$/,
  },
  {
    name: "service label name invalid",
    kind: "services",
    yaml: s("- addresses: [{address: 10.0.0.2, port: 80}]\n  labels: {'app label': x}\n"),
    item: 1,
    field: 'labels["app label"]',
    message: /label name "app label" must match/,
  },
  {
    name: "service label value boolean",
    kind: "services",
    yaml: s("- addresses: [{address: 10.0.0.2, port: 80}]\n  labels: {tls: true}\n"),
    item: 1,
    field: "labels.tls",
    message: /label value is boolean true/,
  },
  {
    name: "service tag invalid",
    kind: "services",
    yaml: s("- addresses: [{address: 10.0.0.2, port: 80, tags: ['a b']}]\n  labels: {a: b}\n"),
    item: 1,
    field: "addresses[0].tags[0]",
    message: /tag "a b" may contain only/,
  },
  {
    name: "unknown service address field",
    kind: "services",
    yaml: s("- addresses: [{address: 10.0.0.2, ports: [80]}]\n  labels: {a: b}\n"),
    item: 1,
    field: "addresses[0].ports",
    message: /unknown field "ports"/,
  },
  {
    name: "unresolvable hostname",
    kind: "services",
    yaml: s(
      "- addresses: [{address: 10.0.0.3, port: 80}, {address: nowhere.test, port: 80}]\n  labels: {a: b}\n",
    ),
    item: 1,
    field: "addresses[1].address",
    message: /cannot resolve hostname "nowhere.test": no A or AAAA records/,
  },
  {
    name: "128 labels on one address after merging",
    kind: "services",
    yaml: `- addresses: [{address: 10.0.0.1, port: 80}]\n  labels: {${
      many(128, (i) => `l${i}: x`)
    }}\n`,
    item: 0,
    field: "labels",
    message: /"10.0.0.1:80" has 129 distinct labels \(merged with .*good.yaml item 0\)/,
  },
];

Deno.test("bad services are rejected with file, item and field, and nothing loads", async (t) => {
  assert.ok(new Set(CASES.map((c) => c.name)).size >= 15);
  for (const c of CASES) await t.step(c.name, () => expectRejected(c));
});
