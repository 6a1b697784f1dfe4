import assert from "node:assert/strict";
import { buildPolicy, DEFAULT_SELECTOR_LABELS, selectorFor } from "./generate_policy.ts";

const K8S = {
  "k8s:pod:name": ["web-1"],
  "k8s:pod:namespace": ["shop"],
  "k8s:container:name": ["nginx"],
  "k8s:container:image:name": ["nginx:1.27"],
  "k8s:container:image:id": ["docker.io/library/nginx@sha256:abc"],
  "k8s:label:app": ["web"],
  "k8s:label:tier": ["front"],
  "process:uid": ["101"],
};

Deno.test("generate-policy: the default selects the container image the Go agent never found", () => {
  assert.ok(!DEFAULT_SELECTOR_LABELS.includes("k8s:container:image"));
  assert.deepEqual(selectorFor(K8S, DEFAULT_SELECTOR_LABELS, []), {
    "k8s:container:image:name": "nginx:1.27",
    "k8s:container:name": "nginx",
    "k8s:pod:name": "web-1",
    "k8s:pod:namespace": "shop",
    "process:uid": "101",
  });
});

Deno.test("generate-policy: --add-label prefix wildcard and exact names", () => {
  assert.deepEqual(selectorFor(K8S, [], ["k8s:label:*", "nope"]), {
    "k8s:label:app": "web",
    "k8s:label:tier": "front",
  });
});

Deno.test("generate-policy: nothing found is an error", () => {
  assert.throws(
    () =>
      buildPolicy({}, "x", {
        labels: ["a"],
        addLabels: [],
        dnsNames: [],
        ttlMs: 1000,
        allowedSpiffeIds: [],
        disableMtls: false,
      }),
    /could not find selectors/,
  );
});
