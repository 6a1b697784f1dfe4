import assert from "node:assert/strict";
import type { KernelPayloads, KernelPolicy, LoadSdInfo } from "../../driver/payloads.ts";
import { assignableIdentities, findAssignable, isAssignable } from "./assignable.ts";
import { matchConnection } from "./match.ts";

function payloads(policies: KernelPolicy[], sd: LoadSdInfo = {}): KernelPayloads {
  return { load_config: { trust_domain: "td" }, load_sd_info: sd, load_policies: { policies } };
}

const ids = (p: KernelPayloads, labels: string[]) =>
  assignableIdentities(p, labels, "td").map((a) => a.spiffeId).sort();

Deno.test("assignableIdentities", async (t) => {
  await t.step("process keys must match; connection keys are free", () => {
    const p = payloads([
      {
        position: 0,
        id: "web",
        selectors: [{ "process:name=python3": true, "destination:port=8000": true }],
        certificate: { workloadID: "web", ttl: "3600s", dnsNames: ["web.td"] },
      },
      {
        position: 1,
        id: "other",
        selectors: [{ "process:name=nginx": true }],
        certificate: { workloadID: "nginx" },
      },
    ]);
    assert.deepEqual(assignableIdentities(p, ["process:name=python3"], "td"), [
      {
        spiffeId: "spiffe://td/web",
        workloadID: "web",
        dnsNames: ["web.td"],
        ttl: "3600s",
        policyId: "web",
      },
    ]);
    assert.deepEqual(ids(p, ["process:name=curl"]), []);
  });

  await t.step("a selector set no connection can satisfy is skipped", () => {
    const p = payloads([
      {
        position: 0,
        id: "a",
        selectors: [{ "direction=sideways": true }],
        certificate: { workloadID: "a" },
      },
      {
        position: 1,
        id: "b",
        selectors: [{ "destination:port=http": true }],
        certificate: { workloadID: "b" },
      },
      // Outbound only, and the service table is empty: the kernel never evaluates it.
      {
        position: 2,
        id: "c",
        selectors: [{ "direction=output": true }],
        certificate: { workloadID: "c" },
      },
    ]);
    assert.deepEqual(ids(p, []), []);
  });

  await t.step("placeholders resolve from single-valued process labels; others are skipped", () => {
    const p = payloads([
      { position: 0, id: "u", selectors: [{}], certificate: { workloadID: "u/[process:uid]" } },
      {
        position: 1,
        id: "g",
        selectors: [{}],
        certificate: { workloadID: "g/[process:gid:additional]" },
      },
      { position: 2, id: "m", selectors: [{}], certificate: { workloadID: "m/[k8s:pod:name]" } },
    ]);
    assert.deepEqual(
      ids(p, ["process:uid=501", "process:gid:additional=1", "process:gid:additional=2"]),
      ["spiffe://td/u/501"],
    );
  });

  await t.step("connection placeholders resolve when fixed, else become wildcards", () => {
    const p = payloads([
      {
        position: 0,
        id: "fixed",
        selectors: [{ "destination:port=8000": true, "direction=input": true }],
        certificate: { workloadID: "svc-[destination:port]-[direction]" },
      },
      {
        position: 1,
        id: "free",
        selectors: [{}],
        certificate: { workloadID: "svc-[destination:port]" },
      },
    ]);
    assert.deepEqual(ids(p, []), [
      "spiffe://td/svc-8000-input",
      "spiffe://td/svc-[destination:port]",
    ]);
    const free = assignableIdentities(p, [], "td").find((a) => a.policyId === "free")!;
    assert.deepEqual(free.wildcards, ["destination:port"]);
    const q = (spiffeId: string) =>
      isAssignable(p, { processLabels: [], spiffeId, trustDomain: "td" });
    assert.equal(q("spiffe://td/svc-443"), true);
    assert.equal(q("spiffe://td/svc-8000-input"), true);
    assert.equal(q("spiffe://td/svc-8000-output"), false);
    assert.equal(q("spiffe://td/svc-x"), false);
    assert.equal(q("spiffe://td/svc-[destination:port]"), false);
  });

  await t.step("egress entries count per matching service entry, with its labels", () => {
    const sd: LoadSdInfo = {
      "10.0.0.2:8000": { labels: ["app=web"] },
      "10.0.0.3": { labels: ["app=db"] },
      "10.0.0.4": { labels: ["app=cache"] },
    };
    const p = payloads([
      {
        position: 0,
        id: "curl",
        selectors: [{ "process:name=curl": true }],
        certificate: { workloadID: "curl", ttl: "60s" },
        egress: [
          {
            position: 0,
            id: "to-app",
            selectors: [{ "app=web": true }, { "app=db": true }],
            certificate: { workloadID: "curl-to-[app]" },
          },
          {
            position: 1,
            id: "never",
            selectors: [{ "app=none": true }],
            certificate: { workloadID: "never" },
          },
        ],
      },
    ], sd);
    const got = assignableIdentities(p, ["process:name=curl"], "td");
    assert.deepEqual(got.map((a) => [a.spiffeId, a.egressId ?? null, a.ttl]).sort(), [
      ["spiffe://td/curl", null, "60s"],
      ["spiffe://td/curl-to-db", "to-app", "60s"],
      ["spiffe://td/curl-to-web", "to-app", "60s"],
    ]);
  });

  await t.step("egress needs a parent selector consistent with the outbound connection", () => {
    const sd: LoadSdInfo = { "10.0.0.2:8000": { labels: ["app=web"] } };
    const egress = [{ position: 0, id: "e", selectors: [{}], certificate: { workloadID: "e" } }];
    const p = payloads([
      {
        position: 0,
        id: "in",
        selectors: [{ "direction=input": true }],
        certificate: { workloadID: "in" },
        egress,
      },
      {
        position: 1,
        id: "port",
        selectors: [{ "destination:port=9000": true }],
        certificate: { workloadID: "port" },
        egress,
      },
      {
        position: 2,
        id: "ok",
        selectors: [{ "destination:ip=10.0.0.2": true }],
        certificate: { workloadID: "ok" },
        egress,
      },
    ], sd);
    assert.deepEqual(
      assignableIdentities(p, [], "td").map((a) => `${a.policyId}/${a.egressId ?? "-"}`).sort(),
      ["in/-", "ok/-", "ok/e", "port/-"],
    );
  });

  await t.step("every identity the matcher produces is assignable", () => {
    const sd: LoadSdInfo = { "10.0.0.2:8000": { labels: ["app=web", "team=a"] } };
    const p = payloads([
      {
        position: 0,
        id: "p",
        selectors: [{ "process:name=curl": true, "direction=output": true }],
        certificate: { workloadID: "c/[process:uid]" },
        egress: [{
          position: 0,
          id: "e",
          selectors: [{ "app=web": true }],
          certificate: { workloadID: "[team]/[process:uid]/[destination:port]" },
        }],
      },
      {
        position: 1,
        id: "q",
        selectors: [{ "process:name=curl": true }],
        certificate: { workloadID: "q/[destination:port]" },
      },
    ], sd);
    const labels = ["process:name=curl", "process:uid=7"];
    const conns = [
      { direction: "output", destinationIp: "10.0.0.2", destinationPort: 8000 },
      { direction: "input", destinationPort: 9000 },
    ] as const;
    for (const c of conns) {
      const m = matchConnection(p, { labels, ...c });
      assert.ok(m.spiffeId, JSON.stringify(c));
      if (m.unresolved.length) continue;
      assert.ok(
        isAssignable(p, { processLabels: labels, spiffeId: m.spiffeId!, trustDomain: "td" }),
        `${m.spiffeId} not assignable`,
      );
    }
    assert.equal(
      findAssignable(p, {
        processLabels: labels,
        spiffeId: "spiffe://td/a/7/8000",
        trustDomain: "td",
      })[0]?.egressId,
      "e",
    );
    assert.equal(
      isAssignable(p, {
        processLabels: ["process:name=curl", "process:uid=8"],
        spiffeId: "spiffe://td/a/7/8000",
        trustDomain: "td",
      }),
      false,
    );
  });
});

Deno.test("assignableIdentities covers every identity the matcher yields (random policies)", () => {
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)]!;
  const LABELS = ["a=1", "a=2", "b=1", "c=x"];
  const KEYS = [
    ...LABELS,
    "direction=input",
    "direction=output",
    "destination:port=80",
    "destination:port=8000",
    "destination:ip=10.0.0.1",
    "destination:ip=10.0.0.2",
  ];
  const TOKENS = [
    "x",
    "[a]",
    "[b]",
    "[direction]",
    "[destination:port]",
    "[destination:ip]",
    "[app]",
  ];
  const selectors = (keys: readonly string[]) =>
    Array.from(
      { length: 1 + rand(2) },
      () => Object.fromEntries(Array.from({ length: rand(3) }, () => [pick(keys), true as const])),
    );
  const template = () => Array.from({ length: 1 + rand(3) }, () => pick(TOKENS)).join("/");
  const sd: LoadSdInfo = {
    "10.0.0.1": { labels: ["app=web"] },
    "10.0.0.2:8000": { labels: ["app=db", "tier=back"] },
  };
  let checked = 0;
  for (let i = 0; i < 300; i++) {
    const policies: KernelPolicy[] = Array.from({ length: 1 + rand(4) }, (_, n) => ({
      position: n,
      id: `p${n}`,
      selectors: selectors(KEYS),
      certificate: { workloadID: template() },
      ...(rand(2)
        ? {
          egress: [{
            position: 0,
            id: `e${n}`,
            selectors: selectors(["app=web", "app=db", "tier=back"]),
            certificate: { workloadID: template() },
          }],
        }
        : {}),
    }));
    const p = payloads(policies, sd);
    const labels = LABELS.filter(() => rand(2) === 1);
    for (let j = 0; j < 10; j++) {
      const m = matchConnection(p, {
        labels,
        direction: pick(["input", "output"] as const),
        sourceIp: "10.0.0.9",
        sourcePort: 40000,
        destinationIp: pick(["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
        destinationPort: pick([80, 8000]),
      });
      if (!m.intercepted || m.unresolved.length > 0 || m.service?.prefixMatch) continue;
      checked++;
      const found = findAssignable(p, {
        processLabels: labels,
        spiffeId: m.spiffeId!,
        trustDomain: "td",
      });
      assert.ok(
        found.some((a) => a.policyId === m.policy!.id && a.egressId === m.egress?.id),
        `${m.spiffeId} (${m.policy!.id}/${m.egress?.id}) not assignable to ${labels}: ` +
          JSON.stringify(policies),
      );
    }
  }
  assert.ok(checked > 300, `only ${checked} intercepted connections checked`);
});
