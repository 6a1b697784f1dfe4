/**
 * The Helm chart (packaging/helm/camblet-agent): `helm lint --strict` and `helm template` for the
 * three CI value sets (kernel module, proxy data plane, Vault CA), every rendered object decoded
 * strictly into its Kubernetes API type by tests/packaging/k8s_decode (k8s.io/api +
 * sigs.k8s.io/yaml UnmarshalStrict: unknown fields are errors), and the rendered config.yaml and
 * policies checked by the agent's own `validate`. helm and k8s_decode are built from the Go module
 * proxy (packaging/go_tool.ts), cached.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { ensureGoTool } from "../../packaging/go_tool.ts";
import { ROOT } from "../../packaging/bundle.ts";
import { envVariableNames } from "../../agent/config/load.ts";
import { runCli } from "../cli/_run.ts";

const CHART = join(ROOT, "packaging/helm/camblet-agent");
const KUBE_VERSION = "1.37.0"; // the Kubernetes of k8s.io/api v0.37 (tests/packaging/k8s_decode)
const SETS = ["kernel", "proxy", "vault"] as const;

async function run(cmd: string, args: string[], stdin?: string) {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

type Obj = Record<string, unknown> & { kind: string; metadata: { name: string } };

// deno-lint-ignore no-explicit-any
type Any = any;

async function render(helm: string, set: string, extra: string[] = []) {
  return await run(helm, [
    "template",
    "camblet",
    CHART,
    "--namespace",
    "camblet",
    "--kube-version",
    KUBE_VERSION,
    "-f",
    join(CHART, `ci/${set}-values.yaml`),
    ...extra,
  ]);
}

Deno.test("helm chart: lint, render three value sets, decode strictly, validate the config", async (t) => {
  const helm = await ensureGoTool("helm");
  const decode = await ensureGoTool("k8s_decode");

  await t.step("helm lint --strict with the defaults and each value set", async () => {
    for (const set of [undefined, ...SETS]) {
      const values = set ? ["-f", join(CHART, `ci/${set}-values.yaml`)] : [];
      const r = await run(helm, [
        "lint",
        "--strict",
        "--kube-version",
        KUBE_VERSION,
        CHART,
        ...values,
      ]);
      assert.equal(r.code, 0, `${set ?? "defaults"}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  for (const set of SETS) {
    await t.step(`${set}: renders and every object decodes strictly`, async () => {
      const r = await render(helm, set);
      assert.equal(r.code, 0, r.stderr);
      const d = await run(decode, [], r.stdout);
      assert.equal(d.code, 0, d.stderr);
      const kinds = d.stdout.trim().split("\n").map((l) => l.split(" ")[2]).sort();
      assert.deepEqual(kinds, [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "DaemonSet",
        "ServiceAccount",
      ]);
      const objs = parseAllDocuments(r.stdout).map((doc) => doc.toJS() as Obj).filter(Boolean);
      const ds: Any = objs.find((o) => o.kind === "DaemonSet");
      const pod = ds.spec.template.spec;
      const agent = pod.containers[0];
      assert.equal(pod.hostPID, true);
      assert.equal(pod.hostNetwork, true);
      const env = new Map(agent.env.map((e: Any) => [e.name, e]));
      const kubelet: Any = env.get("AGENT_METADATACOLLECTORS_KUBERNETES_KUBELETHOST");
      assert.equal(kubelet.valueFrom.fieldRef.fieldPath, "status.hostIP");
      assert.ok(envVariableNames().includes("AGENT_METADATACOLLECTORS_KUBERNETES_KUBELETHOST"));
      for (const p of ["readinessProbe", "livenessProbe", "startupProbe"]) {
        assert.deepEqual(agent[p].exec.command, ["camblet-agent", "status"], p);
      }
      assert.ok(agent.resources.requests.cpu && agent.resources.limits.memory);
      const mounts = new Map(agent.volumeMounts.map((m: Any) => [m.mountPath, m]));
      for (const p of ["/etc/camblet", "/sys/fs/bpf", "/sys/fs/cgroup", "/run/camblet"]) {
        assert.ok(mounts.has(p), `${set}: no mount at ${p}`);
      }
      const volumes = new Map(pod.volumes.map((v: Any) => [v.name, v]));
      const config: Any = objs.find((o) => o.kind === "ConfigMap");
      if (set === "kernel") {
        assert.equal(agent.securityContext.privileged, true);
        assert.equal((volumes.get("camblet-device") as Any).hostPath.type, "CharDevice");
        assert.ok(mounts.has("/dev/camblet"));
        assert.equal(pod.initContainers[0].name, "ca"); // the shared CA from the Secret
        assert.equal((volumes.get("ca-secret") as Any).secret.secretName, "camblet-ca");
      } else {
        assert.ok(!mounts.has("/dev/camblet"));
      }
      if (set === "proxy") {
        assert.equal(agent.securityContext.privileged, false);
        assert.deepEqual(agent.securityContext.capabilities, {
          drop: ["ALL"],
          add: ["BPF", "PERFMON", "NET_ADMIN", "SYS_PTRACE"],
        });
      }
      if (set === "vault") {
        assert.match(
          config.data["config.yaml"],
          /vault:\n\s+address: https:\/\/vault\.vault\.svc:8200/,
        );
        assert.match(config.data["config.yaml"], /caCert: \/etc\/camblet-vault\/ca\.crt/);
        assert.ok(mounts.has("/etc/camblet-vault"));
      }

      // The rendered configuration and policies pass the agent's own validation.
      const dir = await Deno.makeTempDir();
      try {
        await Deno.mkdir(join(dir, "policies"));
        await Deno.mkdir(join(dir, "services"));
        for (const [key, value] of Object.entries(config.data as Record<string, string>)) {
          const path = key === "config.yaml" ? key : key.replace(/^(policies|services)\./, "$1/");
          await Deno.writeTextFile(join(dir, path), value);
        }
        const v = await runCli([
          "validate",
          "--config",
          join(dir, "config.yaml"),
          "--policies-path",
          join(dir, "policies"),
          "--services-path",
          join(dir, "services"),
        ]);
        assert.equal(v.code, 0, `${set}: ${v.stdout}${v.stderr}`);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }

  await t.step(
    "bad values fail the render naming the key (values.schema.json, templates)",
    async () => {
      const typo = await render(helm, "proxy", ["--set", "dataPlan=kernel"]);
      assert.notEqual(typo.code, 0);
      assert.match(typo.stderr, /additional properties 'dataPlan' not allowed/);
      const choice = await render(helm, "proxy", ["--set", "dataPlane=ebpf"]);
      assert.notEqual(choice.code, 0);
      assert.match(
        choice.stderr,
        /at '\/dataPlane': value must be one of 'auto', 'kernel', 'proxy'/,
      );
      const vault = await render(helm, "proxy", ["--set", "ca.backend=vault"]);
      assert.notEqual(vault.code, 0);
      assert.match(vault.stderr, /ca\.vault\.config\.address: required when ca\.backend is vault/);
    },
  );

  await t.step("the strict decoder refuses an unknown field, naming it", async () => {
    const r = await render(helm, "kernel");
    const bad = r.stdout.replace("hostPID: true", "hostPid: true");
    const d = await run(decode, [], bad);
    assert.notEqual(d.code, 0);
    assert.match(
      d.stderr,
      /templates\/daemonset\.yaml: DaemonSet: .*unknown field "spec\.template\.spec\.hostPid"/,
    );
  });
});
