import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import type { Clock } from "../../types.ts";
import { taskContextFromProc } from "../_lib/task_from_proc.ts";
import { createCgroup, spawnAs } from "../../../tests/fakes/attestor_processes.ts";
import { json, run, serveTcp } from "../../../tests/fakes/attestor_servers.ts";
import {
  type KubernetesAttestor,
  kubernetesAttestor,
  type KubernetesConfig,
} from "./kubernetes.ts";
import { parseCredentials } from "./kubelet_client.ts";
import type { Pod } from "./pod_labels.ts";

const log = getLogger(["camblet", "test"]);
const TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6Y2FtYmxldCJ9.c2ln";

function hex(n: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(n)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/** A pod as the kubelet's /pods returns it (core/v1 PodList item, fields per the API reference). */
function documentedPod(uid: string, containerId: string, name = "web-7d4b9c8f6-x2x9k"): Pod {
  return {
    metadata: {
      name,
      namespace: "shop",
      uid,
      labels: { app: "web", "pod-template-hash": "7d4b9c8f6" },
      annotations: {
        "prometheus.io/scrape": "true",
        "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify({
          big: "x".repeat(2000),
        }),
      },
      ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-7d4b9c8f6" }],
    },
    spec: {
      nodeName: "node-1",
      serviceAccountName: "web-sa",
      containers: [{ name: "nginx", image: "nginx:1.27" }, {
        name: "sidecar",
        image: "envoyproxy/envoy:v1.31",
      }],
      initContainers: [{ name: "init", image: "busybox:1.36" }],
    },
    status: {
      containerStatuses: [
        {
          name: "nginx",
          containerID: `containerd://${containerId}`,
          image: "docker.io/library/nginx:1.27",
          imageID: "docker.io/library/nginx@sha256:" + "a".repeat(64),
        },
        {
          name: "sidecar",
          containerID: `containerd://${"f".repeat(64)}`,
          imageID: "docker.io/envoyproxy/envoy@sha256:" + "b".repeat(64),
        },
      ],
      initContainerStatuses: [{
        name: "init",
        containerID: `containerd://${"e".repeat(64)}`,
        imageID: "x",
      }],
    },
  };
}

async function makeTls(dir: string) {
  const o = (args: string[]) => run("openssl", args);
  await o([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    `${dir}/ca.key`,
    "-out",
    `${dir}/ca.pem`,
    "-subj",
    "/CN=kubelet-ca",
    "-days",
    "1",
  ]);
  await o([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    `${dir}/srv.key`,
    "-out",
    `${dir}/srv.csr`,
    "-subj",
    "/CN=node-1",
  ]);
  await Deno.writeTextFile(`${dir}/ext`, "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  await o([
    "x509",
    "-req",
    "-in",
    `${dir}/srv.csr`,
    "-CA",
    `${dir}/ca.pem`,
    "-CAkey",
    `${dir}/ca.key`,
    "-CAcreateserial",
    "-out",
    `${dir}/srv.pem`,
    "-days",
    "1",
    "-extfile",
    `${dir}/ext`,
  ]);
  return {
    cert: await Deno.readTextFile(`${dir}/srv.pem`),
    key: await Deno.readTextFile(`${dir}/srv.key`),
  };
}

class ManualClock implements Clock {
  t = 1_000_000;
  now() {
    return this.t;
  }
}

Deno.test("kubernetes: kubelet /pods over TLS with a token, for a real process in a pod cgroup", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "camblet-kubelet-" });
  const tls = await makeTls(dir);
  const podUid = crypto.randomUUID();
  const containerId = hex(32);
  const pods: Pod[] = [documentedPod(podUid, containerId)];
  let up = true;
  const kubelet = serveTcp((req, url) => {
    if (!up) return new Response("unavailable", { status: 503 });
    if (req.headers.get("authorization") !== `Bearer ${TOKEN}`) {
      return new Response("Unauthorized", { status: 401 });
    }
    return url.pathname === "/pods"
      ? json({ kind: "PodList", apiVersion: "v1", items: pods })
      : json({}, 404);
  }, tls);
  const port = Number(new URL(kubelet.address).port);
  const cg = await createCgroup(
    `camblet-test-${hex(4)}/kubepods/burstable/pod${podUid}/${containerId}`,
  );
  const p = await spawnAs({ uid: 0, gid: 0 });
  const clock = new ManualClock();
  const cfg = (over: Record<string, unknown>): KubernetesConfig => {
    const r = kubernetesAttestor.parseConfig({
      enabled: true,
      kubeletHost: "127.0.0.1",
      kubeletPort: port,
      kubeletCA: `${dir}/ca.pem`,
      credentials: TOKEN,
      minRefreshMs: 1000,
      refreshMs: 10_000,
      ...over,
    });
    assert.ok(r.ok, JSON.stringify(r));
    return r.value;
  };
  const ctx = { log, clock, trustDomain: "camblet", signal: new AbortController().signal };
  const a = await kubernetesAttestor.create(cfg({}), ctx) as KubernetesAttestor;
  try {
    await cg.add(p.pid);
    const task = taskContextFromProc(p.pid)!;

    await t.step("every label of the pod and container", async () => {
      const labels = await a.collect(task, AbortSignal.timeout(5000));
      assert.deepEqual(labels, {
        "k8s:pod:name": ["web-7d4b9c8f6-x2x9k"],
        "k8s:pod:namespace": ["shop"],
        "k8s:pod:serviceaccount": ["web-sa"],
        "k8s:pod:owner:kind": ["replicaset"],
        "k8s:pod:owner:kind-with-version": ["apps/v1/replicaset"],
        "k8s:pod:owner:name": ["web-7d4b9c8f6"],
        "k8s:node:name": ["node-1"],
        "k8s:container:name": ["nginx"],
        "k8s:container:image:id": ["docker.io/library/nginx@sha256:" + "a".repeat(64)],
        "k8s:container:image:name": ["nginx:1.27"],
        "k8s:label:app": ["web"],
        "k8s:label:pod-template-hash": ["7d4b9c8f6"],
        "k8s:annotation:prometheus.io/scrape": ["true"],
        "k8s:pod:image:id": [
          "docker.io/library/nginx@sha256:" + "a".repeat(64),
          "docker.io/envoyproxy/envoy@sha256:" + "b".repeat(64),
        ],
        "k8s:pod:image:name": ["nginx:1.27", "envoyproxy/envoy:v1.31"],
        "k8s:pod:image:count": ["2"],
        "k8s:pod:init-image:name": ["busybox:1.36"],
        "k8s:pod:init-image:count": ["1"],
        "k8s:pod:ephemeral-image:count": ["0"],
      });
    });

    await t.step("cached: no kubelet call per request (Go fetched /pods every time)", async () => {
      const before = a.pods.fetches;
      for (let i = 0; i < 5; i++) await a.collect(task, AbortSignal.timeout(5000));
      assert.equal(a.pods.fetches, before);
    });

    await t.step("a new pod triggers one early refresh, rate-limited", async () => {
      const uid2 = crypto.randomUUID();
      const cid2 = hex(32);
      const newTask = { ...task, cgroup_path: `/kubepods/besteffort/pod${uid2}/${cid2}` };
      pods.push(documentedPod(uid2, cid2, "api-0"));
      clock.t += 1500;
      const before = a.pods.fetches;
      const labels = await a.collect(newTask, AbortSignal.timeout(5000));
      assert.deepEqual(labels["k8s:pod:name"], ["api-0"]);
      assert.equal(a.pods.fetches, before + 1);
      // An unknown pod right after: no second fetch within minRefreshMs.
      const unknown = { ...task, cgroup_path: `/kubepods/pod${crypto.randomUUID()}/${hex(32)}` };
      assert.deepEqual(await a.collect(unknown, AbortSignal.timeout(5000)), {});
      assert.equal(a.pods.fetches, before + 1);
    });

    await t.step("kubelet down: the last good list keeps answering", async () => {
      up = false;
      clock.t += 60_000;
      const labels = await a.collect(task, AbortSignal.timeout(5000));
      assert.deepEqual(labels["k8s:pod:name"], ["web-7d4b9c8f6-x2x9k"]);
      up = true;
    });

    await t.step("TLS is verified: wrong CA fails, skipKubeletVerification passes", async () => {
      const other = await Deno.makeTempDir();
      try {
        await run("openssl", [
          "req",
          "-x509",
          "-newkey",
          "rsa:2048",
          "-nodes",
          "-keyout",
          `${other}/k`,
          "-out",
          `${other}/c.pem`,
          "-subj",
          "/CN=other",
          "-days",
          "1",
        ]);
        const bad = await kubernetesAttestor.create(
          cfg({ kubeletCA: `${other}/c.pem` }),
          ctx,
        ) as KubernetesAttestor;
        await assert.rejects(
          () => bad.collect(task, AbortSignal.timeout(5000)),
          /Cannot GET https:\/\/127\.0\.0\.1/,
        );
        bad.dispose();
        const skip = await kubernetesAttestor.create(
          cfg({ kubeletCA: undefined, skipKubeletVerification: true }),
          ctx,
        ) as KubernetesAttestor;
        assert.deepEqual((await skip.collect(task, AbortSignal.timeout(5000)))["k8s:pod:name"], [
          "web-7d4b9c8f6-x2x9k",
        ]);
        skip.dispose();
      } finally {
        await Deno.remove(other, { recursive: true });
      }
    });

    await t.step("no token: the kubelet's 401 is the error", async () => {
      const anon = await kubernetesAttestor.create(
        cfg({ credentials: undefined }),
        ctx,
      ) as KubernetesAttestor;
      await assert.rejects(() => anon.collect(task, AbortSignal.timeout(5000)), /HTTP 401/);
      anon.dispose();
    });
  } finally {
    a.dispose();
    await p.stop();
    await cg.remove();
    await kubelet.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kubernetes: credentials are a JWT or a PEM certificate and key", () => {
  assert.deepEqual(parseCredentials(TOKEN), { token: TOKEN });
  const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" +
    "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n";
  const c = parseCredentials(pem);
  assert.match(c.cert!, /BEGIN CERTIFICATE/);
  assert.match(c.key!, /BEGIN EC PRIVATE KEY/);
  assert.throws(() => parseCredentials("not a credential"), /neither a JWT nor a PEM/);
  assert.deepEqual(parseCredentials(undefined), {});
});
