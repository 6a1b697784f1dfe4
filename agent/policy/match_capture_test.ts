/**
 * Replays the real module's own evaluations from a capture
 * (tests/testdata/camblet-driver/transcripts/baseline-trace.jsonl, camblet-driver 0.8.0):
 * for every `augmentation response` the kernel logged (its exact policy input), the matcher must
 * reach the `policy match found` / `policy evaluation result` the kernel logged.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { KernelPayloads } from "../../driver/payloads.ts";
import { evaluatePolicies, matchConnection } from "./match.ts";

interface Line {
  dir: string;
  raw: string;
}

const lines: Line[] = (await Deno.readTextFile(
  new URL("../../tests/testdata/camblet-driver/transcripts/baseline-trace.jsonl", import.meta.url),
)).trim().split("\n").map((l) => JSON.parse(l));

const sent = (command: string) => {
  const m = lines.map((l) => JSON.parse(l.raw)).find((m) => m.command === command);
  return JSON.parse(Buffer.from(m.code, "base64").toString("utf8"));
};

const payloads: KernelPayloads = {
  load_config: sent("load_config"),
  load_sd_info: sent("load_sd_info"),
  load_policies: sent("load_policies"),
};

type Log = Record<string, string>;
const logs: Log[] = lines.filter((l) => l.dir === "kernel->agent")
  .map((l) => JSON.parse(l.raw)).filter((m) => m.command === "log")
  .map((m) => JSON.parse(m.data));

Deno.test("matcher agrees with the real module's logged decisions", () => {
  const inputs = logs.filter((l) => l.message === "augmentation response");
  assert.equal(inputs.length, 6);
  for (const log of inputs) {
    const id = log.correlation_id;
    const input = JSON.parse(log.response!);
    const found = logs.find((l) =>
      l.correlation_id === id && l.message?.startsWith("policy match")
    )!;
    const result = logs.find((l) =>
      l.correlation_id === id && l.message === "policy evaluation result"
    )!;
    const d = evaluatePolicies(payloads, input);
    assert.equal(String(d.intercepted), result.camblet_enabled, id);
    assert.equal(String(d.mtls), result.mtls, id);
    if (found.message === "policy match not found") {
      assert.equal(d.policy, undefined);
      continue;
    }
    const match = JSON.parse(found.match!);
    assert.equal(d.policy?.id, match.id);
    assert.equal(d.policy?.position, match.position);
    assert.deepEqual(d.matchedSelector, match.matched_selectors);
    assert.equal(d.certCacheKey, result.id);
    assert.equal(d.spiffeId, result.workload_id);
    assert.equal(d.ttl, result.ttl);
  }
});

Deno.test("matchConnection rebuilds the kernel's input from the connection facts", () => {
  // First curl → python3 connection: curl's source port 37118 shows up on the server side as
  // source:port=65168 (byte-swapped), and the labels match the logged input exactly.
  const logged = logs.filter((l) => l.message === "augmentation response").map((l) =>
    JSON.parse(l.response!)
  );
  const out = matchConnection(payloads, {
    labels: [
      "process:name=curl",
      "process:uid=0",
      "process:gid=0",
      "process:binary:path=/usr/bin/curl",
    ],
    direction: "output",
    sourceIp: "127.0.0.1",
    sourcePort: 37118,
    destinationIp: "127.0.0.1",
    destinationPort: 8000,
  });
  assert.deepEqual(new Set(out.input.labels), new Set(Object.keys(logged[0].labels)));
  assert.deepEqual(out.input.remote?.labels, Object.keys(logged[0].remote.labels));
  assert.equal(out.spiffeId, "spiffe://acme.test/curl");
  const inbound = matchConnection(payloads, {
    labels: [
      "process:name=python3",
      "process:uid=0",
      "process:gid=0",
      "process:binary:path=/usr/bin/python3.11",
    ],
    direction: "input",
    sourceIp: "127.0.0.1",
    sourcePort: 37118,
    destinationIp: "127.0.0.1",
    destinationPort: 8000,
  });
  assert.deepEqual(new Set(inbound.input.labels), new Set(Object.keys(logged[1].labels)));
  assert.equal(inbound.input.remote, undefined);
  assert.equal(inbound.spiffeId, "spiffe://acme.test/web");
});
