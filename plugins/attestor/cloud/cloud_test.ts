import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { systemClock } from "../../types.ts";
import type { TaskContext } from "../../types.ts";
import { json, serveTcp } from "../../../tests/fakes/attestor_servers.ts";
import { ec2Attestor } from "./ec2.ts";
import { gcpAttestor } from "./gcp.ts";
import { azureAttestor } from "./azure.ts";

const ctx = {
  log: getLogger(["camblet", "test"]),
  clock: systemClock,
  trustDomain: "camblet",
  signal: new AbortController().signal,
};
const task = { pid: 1 } as TaskContext;

Deno.test("cloud: off by default, short timeouts", () => {
  for (const p of [ec2Attestor, gcpAttestor, azureAttestor]) {
    const r = p.parseConfig({});
    assert.ok(r.ok);
    assert.equal(r.value.enabled, false, p.name);
    assert.ok(r.value.timeoutMs <= 500, p.name);
  }
});

Deno.test("cloud: ec2 over IMDSv2 (token first), documented paths", async () => {
  const meta: Record<string, string> = {
    "instance-id": "i-1234567890abcdef0",
    "instance-type": "m5.large",
    "ami-id": "ami-0abcdef1234567890",
    "placement/availability-zone": "us-east-1a",
    "placement/region": "us-east-1",
    "local-ipv4": "10.0.0.12",
    "security-groups": "web\nssh",
  };
  const server = serveTcp((req, url) => {
    if (url.pathname === "/latest/api/token") {
      return req.method === "PUT" && req.headers.get("x-aws-ec2-metadata-token-ttl-seconds")
        ? new Response("TOKEN123")
        : new Response("", { status: 405 });
    }
    if (req.headers.get("x-aws-ec2-metadata-token") !== "TOKEN123") {
      return new Response("", { status: 401 });
    }
    const v = meta[url.pathname.replace("/latest/meta-data/", "")];
    return v === undefined ? new Response("Not Found", { status: 404 }) : new Response(v);
  });
  try {
    const cfg = ec2Attestor.parseConfig({
      enabled: true,
      endpoint: server.address,
      timeoutMs: 3000,
    });
    assert.ok(cfg.ok);
    const a = await ec2Attestor.create(cfg.value, ctx);
    const labels = await a.collect(task, AbortSignal.timeout(5000));
    assert.deepEqual(labels, {
      "ec2:security-groups": ["web", "ssh"],
      "ec2:instance:id": ["i-1234567890abcdef0"],
      "ec2:instance:type": ["m5.large"],
      "ec2:ami:id": ["ami-0abcdef1234567890"],
      "ec2:network:local-ipv4": ["10.0.0.12"],
      "ec2:placement:availability-zone": ["us-east-1a"],
      "ec2:placement:region": ["us-east-1"],
    });
    const n = server.requests.length;
    await a.collect(task, AbortSignal.timeout(5000));
    assert.equal(server.requests.length, n, "host labels are fetched once");
  } finally {
    await server.close();
  }
});

Deno.test("cloud: gcp and azure documented metadata documents", async () => {
  const server = serveTcp((req, url) => {
    if (url.pathname.startsWith("/computeMetadata/")) {
      if (req.headers.get("metadata-flavor") !== "Google") return new Response("", { status: 403 });
      // The id as GCE sends it: a bare 64-bit number (a JS number literal would be rounded).
      const exactId = (r: Response) =>
        r.text().then((t) => new Response(t.replace('"@ID@"', "4520031799277581759"), r));
      return url.pathname.includes("/instance/")
        ? exactId(json({
          id: "@ID@",
          name: "web-1",
          cpuPlatform: "Intel Broadwell",
          image: "projects/debian-cloud/global/images/debian-12-bookworm-v20240515",
          machineType: "projects/123456789/machineTypes/e2-medium",
          zone: "projects/123456789/zones/europe-west1-b",
          tags: ["http-server"],
          attributes: { "ssh-keys": "secret", role: "web", script: "a\nb\nc" },
          networkInterfaces: [{
            ip: "10.132.0.2",
            mac: "42:01:0a:84:00:02",
            accessConfigs: [{ externalIp: "34.1.2.3" }],
          }],
          serviceAccounts: {
            default: {
              aliases: ["default"],
              email: "123456789-compute@developer.gserviceaccount.com",
              scopes: ["https://www.googleapis.com/auth/cloud-platform"],
            },
          },
          scheduling: {
            automaticRestart: "TRUE",
            onHostMaintenance: "MIGRATE",
            preemptible: "FALSE",
          },
        }))
        : json({
          projectId: "acme-prod",
          numericProjectId: 123456789,
          attributes: { env: "prod" },
        });
    }
    if (url.pathname.startsWith("/metadata/")) {
      if (req.headers.get("metadata") !== "true") return new Response("", { status: 400 });
      return url.pathname === "/metadata/instance"
        ? json({
          compute: {
            name: "vm-1",
            location: "westeurope",
            vmSize: "Standard_D2s_v3",
            resourceGroupName: "rg-web",
            subscriptionId: "8d10da13-8125-4ba9-a717-bf7490507b3d",
            osType: "Linux",
            tagsList: [{ name: "env", value: "prod" }],
          },
          network: {
            interface: [{
              macAddress: "000D3AF806EC",
              ipv4: { ipAddress: [{ privateIpAddress: "10.1.0.4", publicIpAddress: "" }] },
            }],
          },
        })
        : json({ loadbalancer: { publicIpAddresses: [{ frontendIpAddress: "51.0.0.1" }] } });
    }
    return new Response("", { status: 404 });
  });
  try {
    const g = gcpAttestor.parseConfig({ enabled: true, endpoint: server.address, timeoutMs: 3000 });
    assert.ok(g.ok);
    const gl = await (await gcpAttestor.create(g.value, ctx)).collect(
      task,
      AbortSignal.timeout(5000),
    );
    // 64-bit ids stay exact (JSON numbers beyond 2^53 would be rounded).
    assert.deepEqual(gl["gcp:instance:id"], ["4520031799277581759"]);
    assert.deepEqual(gl["gcp:instance:serviceaccount:default:email"], [
      "123456789-compute@developer.gserviceaccount.com",
    ]);
    assert.deepEqual(gl["gcp:instance:serviceaccount:default:scope"], [
      "https://www.googleapis.com/auth/cloud-platform",
    ]);
    assert.deepEqual(gl["gcp:instance:placement:zone"], ["europe-west1-b"]);
    assert.deepEqual(gl["gcp:instance:placement:region"], ["europe-west1"]);
    assert.deepEqual(gl["gcp:instance:machine:type"], ["e2-medium"]);
    assert.deepEqual(gl["gcp:instance:attribute:role"], ["web"]);
    assert.equal(gl["gcp:instance:attribute:ssh-keys"], undefined);
    assert.equal(gl["gcp:instance:attribute:script"], undefined);
    assert.deepEqual(gl["gcp:instance:network:public-ipv4"], ["34.1.2.3"]);
    assert.deepEqual(gl["gcp:project:id"], ["acme-prod"]);
    assert.deepEqual(gl["gcp:project:attribute:env"], ["prod"]);

    const z = azureAttestor.parseConfig({
      enabled: true,
      endpoint: server.address,
      timeoutMs: 3000,
    });
    assert.ok(z.ok);
    const al = await (await azureAttestor.create(z.value, ctx)).collect(
      task,
      AbortSignal.timeout(5000),
    );
    assert.deepEqual(al["azure:vm:size"], ["Standard_D2s_v3"]);
    assert.deepEqual(al["azure:tag:env"], ["prod"]);
    assert.deepEqual(al["azure:placement:location"], ["westeurope"]);
    assert.deepEqual(al["azure:network:private-ipv4"], ["10.1.0.4"]);
    assert.deepEqual(al["azure:network:public-ipv4"], ["51.0.0.1"]);
  } finally {
    await server.close();
  }
});

Deno.test("cloud: a metadata service that does not answer fails within the timeout", async () => {
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const c of silent) conns.push(c);
    } catch {
      // closed
    }
  })();
  try {
    const cfg = ec2Attestor.parseConfig({
      enabled: true,
      endpoint: `http://127.0.0.1:${silent.addr.port}`,
      timeoutMs: 100,
    });
    assert.ok(cfg.ok);
    const a = await ec2Attestor.create(cfg.value, ctx);
    const t0 = performance.now();
    await assert.rejects(() => a.collect(task, AbortSignal.timeout(5000)));
    assert.ok(performance.now() - t0 < 1000);
  } finally {
    silent.close();
    await accepting;
    for (const c of conns) c.close();
  }
});
