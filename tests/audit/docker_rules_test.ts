// The container rules against the real Docker daemon: a shell and a package manager started in
// a container are reported once, with the container's id, its Docker labels (the docker
// attestor) and the workload's SPIFFE ID; a non-shell in a container and host shells are not.
import assert from "node:assert/strict";
import { skip } from "../_skip.ts";
import { buildRules, captureMissing, RULES_DIR } from "./_rules.ts";
import { dockerAvailable, run } from "../fakes/attestor_servers.ts";
import { AuditPrograms } from "../../driver/bpf/audit.ts";
import { loadRulesBytes } from "../../agent/audit/rules_file.ts";
import { AuditCapture, AuditEngine, type AuditRecord } from "../../agent/audit/engine.ts";
import { DockerAttestor, dockerAttestor } from "../../plugins/attestor/docker/docker.ts";
import { taskContextFromProc } from "../../plugins/attestor/_lib/task_from_proc.ts";
import { systemClock } from "../../plugins/types.ts";
import { hostCgroupIds } from "../../agent/audit/prefilter.ts";
import { DOCKER_RULES } from "./_triggers.ts";

const IMAGE = "camblet-test/audit-busybox:1";
/** The daemon's socket: DOCKER_HOST (unix://…, also read by the docker CLI) or the default. */
const SOCKET = Deno.env.get("DOCKER_HOST")?.replace(/^unix:\/\//, "") ?? "/var/run/docker.sock";
const why = captureMissing() ||
  (!(await dockerAvailable(SOCKET)) && `no Docker daemon on ${SOCKET}`);

/** A busybox image (static binary, applet links), imported so no registry is needed. */
async function ensureImage(): Promise<void> {
  try {
    await run("docker", ["image", "inspect", IMAGE]);
    return;
  } catch {
    // build it
  }
  const root = await Deno.makeTempDir({ prefix: "camblet-audit-rootfs-" });
  try {
    await Deno.mkdir(`${root}/bin`, { recursive: true });
    await Deno.mkdir(`${root}/usr/bin`, { recursive: true });
    await Deno.copyFile("/usr/bin/busybox", `${root}/bin/busybox`);
    await Deno.chmod(`${root}/bin/busybox`, 0o755);
    for (const a of ["sh", "sleep", "true"]) await Deno.symlink("busybox", `${root}/bin/${a}`);
    await Deno.symlink("../../bin/busybox", `${root}/usr/bin/apt-get`);
    const tar = await new Deno.Command("tar", { args: ["-C", root, "-c", "."], stdout: "piped" })
      .output();
    await run("docker", ["import", "-", IMAGE], tar.stdout);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** The real Docker attestor: the labels of a live pid, as sorted `key=value` strings. */
function dockerLabels(): { labelsOf(pid: number): Promise<string[]>; docker: DockerAttestor } {
  const cfg = dockerAttestor.parseConfig({ enabled: true, socketPath: SOCKET });
  assert.ok(cfg.ok);
  const docker = new DockerAttestor(cfg.value, { clock: systemClock });
  const labelsOf = async (pid: number) => {
    const task = taskContextFromProc(pid);
    if (!task) throw new Error(`pid ${pid} is gone`);
    const l = await docker.collect(task, AbortSignal.timeout(2000));
    return Object.entries(l).flatMap(([k, vs]) => vs.map((v) => `${k}=${v}`)).sort();
  };
  return { labelsOf, docker };
}

Deno.test({
  name:
    "container audit rules: shell and package manager in a Docker container, with labels and SPIFFE ID",
  ignore: skip(why),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await ensureImage();
    const { labelsOf, docker } = dockerLabels();
    const spiffeIdOf = (labels: string[]) => {
      const app = labels.find((l) => l.startsWith("docker:label:app="))?.split("=")[1];
      return app ? `spiffe://example.org/ns/test/app/${app}` : undefined;
    };
    const records: AuditRecord[] = [];
    const rules = await loadRulesBytes(await buildRules(), "policies/rego/audit");
    const engine = new AuditEngine(rules, [(r) => records.push(r)]);
    const programs = AuditPrograms.load(Deno.pid);
    // The container rules are scoped to containers: the host's cgroups (scanned before the
    // containers start) stay in the kernel for them.
    programs.setHostCgroups(hostCgroupIds());
    const capture = AuditCapture.start({ programs, engine, labelsOf, spiffeIdOf, pollMs: 10 });
    const started = async (args: string[]) => {
      records.length = 0;
      const id = await run("docker", [
        "run",
        "-d",
        "--network",
        "none",
        "--label",
        "app=audit-web",
        IMAGE,
        ...args,
      ]);
      await new Promise((r) => setTimeout(r, 1500));
      await capture.drain();
      await run("docker", ["rm", "-f", id]);
      return id;
    };
    try {
      const miss = await started(["/bin/sleep", "3"]);
      assert.deepEqual(
        records.filter((r) => r.container.id === miss).map((r) => `${r.rule}: ${r.output}`),
        [],
      );

      const id = await started(["/bin/sh", "-c", "/usr/bin/apt-get; sleep 3"]);
      const mine = records.filter((r) => r.container.id === id);
      const shell = mine.filter((r) => r.rule === DOCKER_RULES.shell);
      assert.equal(shell.length, 1, JSON.stringify(mine.map((r) => r.output)));
      const s = shell[0]!;
      assert.equal(s.process.name, "sh");
      assert.ok(
        s.process.ancestors.some((a) => a.name.startsWith("containerd-shim")),
        `chain ${s.process.ancestors.map((a) => a.name)}`,
      );
      assert.equal(s.container.labels["docker:label:app"], "audit-web");
      assert.ok(s.labels.includes("docker:label:app=audit-web"));
      assert.equal(s.spiffe_id, "spiffe://example.org/ns/test/app/audit-web");
      const pm = mine.filter((r) => r.rule === DOCKER_RULES.packageManager);
      assert.equal(pm.length, 1);
      assert.equal(pm[0]!.process.name, "apt-get");
      assert.equal(pm[0]!.process.ancestors[0]!.name, "sh");
      assert.equal(pm[0]!.spiffe_id, "spiffe://example.org/ns/test/app/audit-web");
      // Shells on the host (docker's own, this test's) are not "in a container".
      assert.equal(
        records.filter((r) => r.rule === DOCKER_RULES.shell && r.container.id === "")
          .length,
        0,
      );
      const d = programs.describe();
      assert.ok(d.hostCgroups > 0, "the host's cgroups are known");
      assert.deepEqual(
        d.groups.filter((g) => g.cgroups === "containers").flatMap((g) => g.rules).sort(),
        Object.values(DOCKER_RULES).sort(),
      );
    } finally {
      await capture.close();
      programs.close();
      docker.dispose();
    }
  },
});

Deno.test({
  name:
    "container audit rules: a container with the CRI labels Kubernetes sets carries its pod (name, namespace, uid, container) into the input, records and rules",
  ignore: skip(why),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await ensureImage();
    const { labelsOf, docker } = dockerLabels();
    // The defaults and a rule that reads the pod, as a rule author would.
    const dir = await Deno.makeTempDir({ prefix: "camblet-audit-pod-" });
    for (const e of Deno.readDirSync(RULES_DIR)) {
      if (!e.name.endsWith("_test.rego")) {
        await Deno.copyFile(`${RULES_DIR}/${e.name}`, `${dir}/${e.name}`);
      }
    }
    const tag = crypto.randomUUID().slice(0, 8);
    await Deno.writeTextFile(
      `${dir}/pod.rego`,
      `package camblet.audit
import data.camblet.audit.lib
import rego.v1
filter contains {"rule": "Exec in pod", "syscalls": ["execve"], "containers": true}
violations contains lib.violation("Exec in pod", "notice", concat("", [
  "exec of ", input.proc.name, " in pod ", input.pod.namespace, "/", input.pod.name,
  " (uid ", input.pod.uid, ", container ", input.pod.container, ")",
])) if {
  lib.spawned_process
  input.pod.namespace == "shop-${tag}"
}
`,
    );
    const records: AuditRecord[] = [];
    const rules = await loadRulesBytes(await buildRules(dir), "defaults + pod.rego");
    const engine = new AuditEngine(rules, [(r) => records.push(r)]);
    const programs = AuditPrograms.load(Deno.pid);
    programs.setHostCgroups(hostCgroupIds());
    const capture = AuditCapture.start({ programs, engine, labelsOf, pollMs: 10 });
    const uid = crypto.randomUUID();
    let id = "";
    try {
      id = await run("docker", [
        "run",
        "-d",
        "--network",
        "none",
        // What the kubelet puts on every container it starts (kuberuntime's newContainerLabels).
        "--label",
        "io.kubernetes.pod.name=web-0",
        "--label",
        `io.kubernetes.pod.namespace=shop-${tag}`,
        "--label",
        `io.kubernetes.pod.uid=${uid}`,
        "--label",
        "io.kubernetes.container.name=web",
        IMAGE,
        "/bin/sh",
        "-c",
        "/bin/true; sleep 3",
      ]);
      await new Promise((r) => setTimeout(r, 1500));
      await capture.drain();
      const mine = records.filter((r) => r.container.id === id);
      const shell = mine.filter((r) => r.rule === DOCKER_RULES.shell);
      assert.equal(shell.length, 1, JSON.stringify(mine.map((r) => r.output)));
      assert.deepEqual(JSON.parse(JSON.stringify(shell[0]!.pod)), {
        name: "web-0",
        namespace: `shop-${tag}`,
        uid,
        container: "web",
        labels: {},
      });
      assert.equal(shell[0]!.container.labels["docker:label:io.kubernetes.pod.name"], "web-0");
      const pod = mine.filter((r) => r.rule === "Exec in pod").map((r) => r.output).sort();
      assert.ok(
        pod.includes(`exec of sh in pod shop-${tag}/web-0 (uid ${uid}, container web)`),
        JSON.stringify(pod),
      );
      // Not a pod: a host exec has none (and the rule does not fire outside the container).
      const strays = records.filter((r) => r.rule === "Exec in pod" && r.container.id !== id);
      assert.deepEqual(strays.map((r) => ({ c: r.container.id, out: r.output, pod: r.pod })), []);
    } finally {
      if (id) await run("docker", ["rm", "-f", id]).catch(() => {});
      await capture.close();
      programs.close();
      docker.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
