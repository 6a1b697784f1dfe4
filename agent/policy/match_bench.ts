/**
 * The matcher against 10,000 compiled policies (2 selector sets of 3 keys each, every 10th with
 * two egress entries) and 1,000 service entries. Run: `deno bench -A agent/policy/match_bench.ts`.
 */
import type { KernelPayloads, KernelPolicy, LoadSdInfo } from "../../driver/payloads.ts";
import { matchConnection } from "./match.ts";
import { assignableIdentities } from "./assignable.ts";

const N = 10_000;
const policies: KernelPolicy[] = Array.from({ length: N }, (_, i) => ({
  position: i,
  id: `policy-${i}`,
  selectors: [
    { [`process:name=app${i}`]: true, "process:uid=1000": true, "destination:port=8000": true },
    {
      [`process:name=app${i}`]: true,
      "process:uid=0": true,
      [`k8s:pod:namespace=ns${i % 50}`]: true,
    },
  ],
  certificate: { workloadID: `ns${i % 50}/app${i}/[process:uid]`, ttl: "3600s" },
  connection: { mtls: "STRICT", allowedSPIFFEIDs: [`spiffe://acme.test/ns${i % 50}/peer`] },
  ...(i % 10 === 0
    ? {
      egress: [
        {
          position: 0,
          id: `e${i}-0`,
          selectors: [{ "app:label=db": true }],
          certificate: { workloadID: `to-db/${i}` },
        },
        {
          position: 1,
          id: `e${i}-1`,
          selectors: [{ [`app:label=svc${i}`]: true }],
          certificate: { workloadID: `to-svc/${i}` },
        },
      ],
    }
    : {}),
}));
const sd: LoadSdInfo = {};
for (let i = 0; i < 1000; i++) {
  sd[`10.0.${i >> 8}.${i & 255}:8000`] = { labels: [`app:label=svc${i * 10}`, "tier=back"] };
}
const payloads: KernelPayloads = {
  load_config: { trust_domain: "acme.test" },
  load_sd_info: sd,
  load_policies: { policies },
};
const labels = [
  "process:name=app9990",
  "process:uid=1000",
  "process:gid=1000",
  "process:binary:path=/usr/bin/app",
  "k8s:pod:namespace=ns40",
  "linuxos:name=debian",
];

Deno.bench("matchConnection: inbound, 10k policies, match at position 9990", () => {
  const r = matchConnection(payloads, {
    labels,
    direction: "input",
    sourceIp: "10.1.1.1",
    sourcePort: 40000,
    destinationIp: "10.0.0.1",
    destinationPort: 8000,
  });
  if (r.policy?.id !== "policy-9990") throw new Error("wrong match");
});

Deno.bench("matchConnection: outbound with service + egress, 10k policies", () => {
  const r = matchConnection(payloads, {
    labels,
    direction: "output",
    destinationIp: "10.0.3.231",
    destinationPort: 8000,
  });
  if (r.egress?.id !== "e9990-1") throw new Error(`wrong match ${r.egress?.id}`);
});

Deno.bench("matchConnection: no match, 10k policies", () => {
  const r = matchConnection(payloads, { labels: ["process:name=none"], direction: "input" });
  if (r.intercepted) throw new Error("unexpected match");
});

Deno.bench("matchConnection: trace 'all' (what explain runs), 10k policies", () => {
  matchConnection(payloads, { labels, direction: "input", destinationPort: 8000 }, {
    trace: "all",
  });
});

Deno.bench("assignableIdentities: 10k policies, 1k services", () => {
  const a = assignableIdentities(payloads, labels, "acme.test");
  if (a.length === 0) throw new Error("nothing assignable");
});
