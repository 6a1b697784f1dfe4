import assert from "node:assert/strict";
import { ContextBuilder, openFlags, podOf } from "./context.ts";
import type { RawAuditEvent } from "../../driver/bpf/audit_layout.ts";
import { processLabelsOf } from "../../tests/fakes/process_labels.ts";
import { spawnAs, spawnWithPid } from "../../tests/fakes/attestor_processes.ts";

function raw(over: Partial<RawAuditEvent>): RawAuditEvent {
  return {
    ts: 0n,
    cgroupId: 1n,
    syscall: "openat",
    nr: 257,
    ret: 3,
    args: [BigInt.asUintN(64, -100n), 0n, 0o1101n, 0o644n, 0n, 0n],
    pid: Deno.pid,
    tid: Deno.pid,
    ppid: 1,
    uid: 0,
    gid: 0,
    comm: "deno",
    ancestors: [{ pid: 1, comm: "init" }],
    path: "x/../y.txt",
    path2: "",
    exeName: "",
    argv: [],
    howFlags: 0,
    ...over,
  };
}

Deno.test("context: a relative openat path is resolved against the live process's cwd; flags and mode are decoded", async () => {
  const c = new ContextBuilder();
  const i = await c.build(raw({}));
  assert.equal(i.proc.cwd, Deno.cwd());
  assert.equal(i.path, `${Deno.cwd()}/y.txt`);
  assert.equal(i.flags, 0o1101);
  // O_WRONLY|O_CREAT|O_TRUNC, as lib.rego's flags names them
  assert.deepEqual(i.open_flags, {
    read: false,
    write: true,
    create: true,
    trunc: true,
    append: false,
  });
  assert.equal(i.mode, 0o644);
  assert.equal(i.proc.exe, Deno.execPath());
  assert.deepEqual(i.ancestors.map((a) => a.name), ["init"]);
});

Deno.test("context: an exec of a process already gone keeps the exec'd path as exe and argv as cmdline; labels come from the nearest attested ancestor", async () => {
  const seen: number[] = [];
  const c = new ContextBuilder({
    labelsOf: (pid) => {
      seen.push(pid);
      return pid === Deno.pid ? Promise.resolve(["app=test"]) : Promise.reject(new Error("gone"));
    },
    spiffeIdOf: (l) => (l.includes("app=test") ? "spiffe://example.org/test" : undefined),
  });
  await c.build(raw({ syscall: "connect", nr: 42, path: "" })); // attests the test process
  const gone = 4_000_000; // above pid_max: never a live pid
  const i = await c.build(raw({
    syscall: "execve",
    nr: 59,
    ret: 0,
    pid: gone,
    tid: gone,
    ppid: Deno.pid,
    comm: "sh",
    path: "/bin/sh",
    argv: ["sh", "-c", "true"],
    ancestors: [{ pid: Deno.pid, comm: "deno" }],
  }));
  assert.equal(i.proc.exe, "/bin/sh");
  assert.equal(i.proc.cmdline, "sh -c true");
  assert.deepEqual(i.labels, ["app=test"]);
  assert.equal(i.spiffe_id, "spiffe://example.org/test");
  assert.equal(i.ancestors[0]!.exe, Deno.execPath());
});

Deno.test("context: open flags are named like lib.rego's (O_RDWR reads and writes, O_APPEND)", () => {
  assert.deepEqual(openFlags(2 | 1024), {
    read: true,
    write: true,
    create: false,
    trunc: false,
    append: true,
  });
  assert.deepEqual(openFlags(0o2000000), {
    read: true,
    write: false,
    create: false,
    trunc: false,
    append: false,
  });
});

Deno.test("context: a process that execs after its event is not labelled (or described) as its new program", async () => {
  // The real process attestor, asked by pid as the daemon asks it: it reads /proc when the
  // event is judged, which is after the exec here.
  const { labelsOf, dispose } = processLabelsOf();
  const c = new ContextBuilder({ labelsOf });
  // sh waits for a line, then execs sleep: the event below is sh's, judged once it is sleep.
  const child = new Deno.Command("sh", {
    args: ["-c", "read x; exec sleep 30"],
    stdin: "piped",
    stdout: "null",
  }).spawn();
  try {
    const comm = () => Deno.readTextFileSync(`/proc/${child.pid}/comm`).trim();
    for (let i = 0; i < 200 && comm() !== "sh"; i++) await new Promise((r) => setTimeout(r, 10));
    const shExe = Deno.readLinkSync(`/proc/${child.pid}/exe`);
    const ev = raw({
      pid: child.pid,
      tid: child.pid,
      ppid: Deno.pid,
      comm: "sh",
      path: "/etc/shadow",
      args: [BigInt.asUintN(64, -100n), 0n, 0n, 0n, 0n, 0n],
      ancestors: [{ pid: Deno.pid, comm: "deno" }],
    });
    await c.build(raw({ syscall: "connect", nr: 42, path: "" })); // attests the test process
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode("go\n"));
    await w.close();
    for (let i = 0; i < 200 && comm() !== "sleep"; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(comm(), "sleep", "the child exec'd sleep");

    const i = await c.build(ev);
    assert.equal(i.proc.name, "sh");
    assert.ok(!i.labels.includes("process:name=sleep"), `labels ${i.labels}`);
    assert.ok(!i.labels.some((l) => l.startsWith("process:binary:path=") && l.includes("sleep")));
    // The process attestor's labels are the event's facts instead (its pid, comm, ids).
    assert.ok(i.labels.includes(`process:pid=${child.pid}`), `labels ${i.labels}`);
    assert.ok(i.labels.includes("process:name=sh"), `labels ${i.labels}`);
    assert.ok(i.labels.includes("process:uid:real=0"), `labels ${i.labels}`);
    assert.notEqual(i.proc.exe, Deno.readLinkSync(`/proc/${child.pid}/exe`));
    assert.deepEqual(i.proc.cmdline, "");
    assert.notEqual(shExe, Deno.readLinkSync(`/proc/${child.pid}/exe`));

    // Its exec event, then an event of the new program: labelled as sleep.
    const sleepExe = Deno.readLinkSync(`/proc/${child.pid}/exe`);
    const ex = await c.build(raw({
      ...ev,
      syscall: "execve",
      nr: 59,
      ret: 0,
      comm: "sleep",
      path: sleepExe,
      argv: ["sleep", "30"],
    }));
    assert.equal(ex.proc.exe, sleepExe);
    assert.ok(ex.labels.includes("process:name=sleep"), `labels ${ex.labels}`);
    assert.ok(ex.labels.includes(`process:pid=${child.pid}`));
  } finally {
    child.kill();
    await child.status;
    dispose();
  }
});

Deno.test("context: the pod comes from the kubelet attestor's labels, else the CRI labels of the runtime; none without either", async () => {
  const cri = [
    "docker:label:io.kubernetes.container.name=web",
    "docker:label:io.kubernetes.pod.name=web-0",
    "docker:label:io.kubernetes.pod.namespace=shop",
    "docker:label:io.kubernetes.pod.uid=0d1c2b3a-0000-4000-8000-000000000001",
  ];
  assert.deepEqual(JSON.parse(JSON.stringify(podOf(cri))), {
    name: "web-0",
    namespace: "shop",
    uid: "0d1c2b3a-0000-4000-8000-000000000001",
    container: "web",
    labels: {},
  });
  const kubelet = [
    "k8s:pod:name=web-0",
    "k8s:pod:namespace=shop",
    "k8s:container:name=web",
    "k8s:label:app=web",
    "k8s:label:tier=front",
    "k8s:pod:serviceaccount=web",
  ];
  const both = podOf([
    ...kubelet,
    "containerd:label:io.kubernetes.pod.uid=u-1",
    "containerd:label:io.kubernetes.pod.name=stale",
  ]);
  assert.equal(both?.name, "web-0", "the kubelet's over the runtime's");
  assert.equal(both?.uid, "u-1");
  assert.deepEqual({ ...both!.labels }, { app: "web", tier: "front" });
  assert.equal(podOf(["docker:label:app=web", "process:name=sh"]), null);

  // The event's cgroup is a container's (a /proc whose cgroup file says so).
  const proc = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${proc}/${Deno.pid}`);
    for (const f of ["exe", "stat", "status", "comm", "cmdline", "cwd"]) {
      await Deno.symlink(`/proc/${Deno.pid}/${f}`, `${proc}/${Deno.pid}/${f}`);
    }
    await Deno.writeTextFile(
      `${proc}/${Deno.pid}/cgroup`,
      `0::/system.slice/docker-${"c".repeat(64)}.scope\n`,
    );
    const c = new ContextBuilder({ labelsOf: () => Promise.resolve(kubelet), procRoot: proc });
    const i = await c.build(raw({ syscall: "connect", nr: 42, path: "" }));
    assert.equal(i.pod?.namespace, "shop");
    assert.equal(i.pod?.labels.app, "web");
    // The same labels for an event in a host cgroup (runc init exec'd before it joined the
    // container, attested later from inside it): no pod, as no container labels.
    const early = new ContextBuilder({ labelsOf: () => Promise.resolve(kubelet) });
    const e = await early.build(raw({ syscall: "connect", nr: 42, path: "" }));
    assert.equal(e.container.id, "");
    assert.equal(e.pod, null);
  } finally {
    await Deno.remove(proc, { recursive: true });
  }
  const host = await new ContextBuilder().build(raw({ syscall: "connect", nr: 42, path: "" }));
  assert.equal(host.pod, null);
});

Deno.test("context: a reused pid whose exec was not seen is described and labelled as its new process, not the old one's cached entry", async () => {
  const attested: number[] = [];
  const c = new ContextBuilder({
    labelsOf: (pid) => {
      attested.push(pid);
      return Promise.resolve([`test:exe=${Deno.readLinkSync(`/proc/${pid}/exe`)}`]);
    },
  });
  const ev = (pid: number, comm: string) =>
    raw({ pid, tid: pid, comm, syscall: "connect", nr: 42, path: "" });
  const first = await spawnAs({ uid: 0, gid: 0 }); // sleep 300
  const pid = first.pid;
  const a = await c.build(ev(pid, "sleep"));
  assert.match(a.proc.exe, /sleep$/);
  await first.stop();
  // The same pid, another program; its exec event never reached the builder (lost, or before it).
  const second = await spawnWithPid(
    pid,
    () => spawnAs({ uid: 0, gid: 0, command: "tail", args: ["-f", "/dev/null"] }),
  );
  try {
    const b = await c.build(ev(pid, "tail"));
    assert.match(b.proc.exe, /tail$/);
    assert.equal(b.proc.cmdline, "tail -f /dev/null");
    assert.ok(b.labels.some((l) => /^test:exe=.*tail$/.test(l)), `labels ${b.labels}`);
    assert.equal(attested.filter((p) => p === pid).length, 2, "attested again");
  } finally {
    await second.stop();
  }
});
