/**
 * Compiler throughput: 10,000 policies and 10,000 services (target: under 1 s together).
 * Run with `deno bench -A agent/policy/compile_bench.ts`.
 *
 * @module
 */
import { compilePolicies } from "./compile.ts";
import { parsePolicyFile } from "./parse_policy.ts";
import { compilePayloads } from "./payloads.ts";
import { compileServices, type Resolutions } from "./services.ts";
import type { PolicySource, ServiceSource } from "./source.ts";

const N = 10_000;

/** Realistic mix: lists to expand, every 10th policy a generalisation of the one before (order edges), egress on some. */
function policies(n: number): PolicySource[] {
  return Array.from({ length: n }, (_, i): PolicySource => {
    const app = `svc-${Math.floor(i / 10)}`;
    const general = i % 10 === 9;
    return {
      file: `policies/${String(Math.floor(i / 100)).padStart(3, "0")}.yaml`,
      item: i % 100,
      line: (i % 100) * 8 + 1,
      policy: {
        selectors: general ? [[["process:name", [app]]]] : [[
          ["process:name", [app]],
          ["process:uid", [String(1000 + (i % 10)), String(2000 + (i % 10))]],
          ["destination:port", [String(8000 + (i % 100))]],
          ["direction", ["input"]],
        ]],
        certificate: { workloadID: `team-${i % 37}/${app}/[process:uid]`, ttl: "3600s" },
        connection: { mtls: "STRICT", allowedSPIFFEIDs: [`spiffe://acme.corp/client-${i % 13}`] },
        ...(i % 5 === 0
          ? {
            egress: [{
              selectors: [[["app:label", [`db-${i % 50}`]]]],
              certificate: { workloadID: `${app}/db` },
            }],
          }
          : {}),
      },
    };
  });
}

function services(n: number): { sources: ServiceSource[]; resolutions: Resolutions } {
  const addresses = new Map<string, string[]>();
  const sources = Array.from({ length: n }, (_, i): ServiceSource => {
    const host = `svc-${i}.internal`;
    if (i % 4 === 3) {
      addresses.set(host, [`10.1.${(i >> 8) & 255}.${i & 255}`, `fd00::1:${i.toString(16)}`]);
    }
    return {
      file: `services/${String(Math.floor(i / 100)).padStart(3, "0")}.yaml`,
      item: i % 100,
      service: {
        addresses: [
          {
            address: i % 4 === 3 ? host : `10.0.${(i >> 8) & 255}.${i & 255}`,
            port: 8000 + (i % 100),
          },
          ...(i % 2 ? [{ address: `2001:db8::${i.toString(16)}`, port: 443 }] : []),
        ],
        labels: [`app:label=svc-${i}`, `team=t${i % 37}`, `tier=${i % 3}`],
      },
    };
  });
  return { sources, resolutions: { addresses } };
}

const P = policies(N);
const S = services(N);
const YAML = P.slice(0, 1000).map((p, i) =>
  `- selectors: [{process:name: svc-${i}, process:uid: [1000, 2000], destination:port: ${
    8000 + (i % 100)
  }}]
  certificate: {workloadID: "${p.policy.certificate.workloadID}", ttl: 1h}
  connection: {mtls: STRICT, allowedSPIFFEIDs: ["spiffe://{{.TrustDomain}}/client-${i % 13}"]}
`
).join("");

// Measure the success path only: the inputs must be valid.
const check = parsePolicyFile("bench.yaml", YAML, { trustDomain: "acme.corp" });
if (check.problems.length || check.policies.length !== 1000) {
  throw new Error(`bench YAML is invalid: ${check.problems[0]?.message}`);
}
const compiled = compilePayloads({
  trustDomain: "acme.corp",
  policies: P,
  services: S.sources,
  resolutions: S.resolutions,
});
// 10,000 policies exceed one device write on purpose (a limits problem); nothing else may fail.
if (compiled.problems.some((p) => p.source !== "load_policies" && p.source !== "load_sd_info")) {
  throw new Error(`bench input is invalid: ${compiled.problems[0]?.message}`);
}

Deno.bench("compile 10,000 policies", { group: "compile", baseline: true }, () => {
  compilePolicies(P);
});

Deno.bench("compile 10,000 services", { group: "compile" }, () => {
  compileServices(S.sources, S.resolutions);
});

Deno.bench(
  "compile 10,000 policies + 10,000 services + kernel checks",
  { group: "compile" },
  () => {
    compilePayloads({
      trustDomain: "acme.corp",
      policies: P,
      services: S.sources,
      resolutions: S.resolutions,
    });
  },
);

Deno.bench("parse 1,000 policies from YAML (template, YAML, zod, normalise)", () => {
  parsePolicyFile("bench.yaml", YAML, { trustDomain: "acme.corp" });
});
