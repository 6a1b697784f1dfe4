import assert from "node:assert/strict";
import {
  parseSpiffeId,
  spiffeIdAllowed,
  spiffeIdProblem,
  spiffePathProblem,
  trustDomainProblem,
} from "./spiffe.ts";

Deno.test("valid SPIFFE IDs parse", () => {
  assert.deepEqual(parseSpiffeId("spiffe://acme.corp/ns/web"), {
    trustDomain: "acme.corp",
    path: "ns/web",
  });
  assert.deepEqual(parseSpiffeId("spiffe://camblet"), { trustDomain: "camblet", path: "" });
});

Deno.test("invalid SPIFFE IDs say why", () => {
  const cases: [string, RegExp][] = [
    ["spiffe//x", /must start with "spiffe:\/\/"/],
    ["spiffe://Acme/x", /lower-case/],
    ["spiffe://acme/a//b", /empty segment/],
    ["spiffe://acme/a/../b", /"\.\." segment/],
    ["spiffe://acme/a/", /empty segment/],
    ["spiffe://acme/a b", /may contain only/],
    ["spiffe:///x", /trust domain is empty/],
  ];
  for (const [id, re] of cases) assert.match(spiffeIdProblem(id) ?? "", re, id);
  assert.throws(() => parseSpiffeId("http://x"), TypeError);
});

Deno.test("trust domains and templated paths", () => {
  assert.equal(trustDomainProblem("acme.corp"), undefined);
  assert.match(trustDomainProblem("") ?? "", /empty/);
  assert.equal(spiffePathProblem("ns/[process:uid]", true), undefined);
  assert.match(spiffePathProblem("ns/[process:uid]") ?? "", /may contain only/);
});

Deno.test("allowed SPIFFE IDs match by path segment", () => {
  assert.ok(spiffeIdAllowed("spiffe://td/a/b", ["spiffe://td/a"]));
  assert.ok(spiffeIdAllowed("spiffe://td/a", ["spiffe://td/a"]));
  assert.ok(!spiffeIdAllowed("spiffe://td/ab", ["spiffe://td/a"]));
  assert.ok(spiffeIdAllowed("spiffe://td/x", []));
});
