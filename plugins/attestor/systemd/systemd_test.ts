import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { systemClock } from "../../types.ts";
import { taskContextFromProc } from "../_lib/task_from_proc.ts";
import { createCgroup, spawnAs } from "../../../tests/fakes/attestor_processes.ts";
import { systemdAttestor, systemdLabels } from "./systemd.ts";

Deno.test("systemd: unit and slice from cgroup paths", () => {
  assert.deepEqual(systemdLabels("/system.slice/nginx.service"), {
    "systemd:unit": ["nginx.service"],
    "systemd:slice": ["system.slice"],
  });
  assert.deepEqual(systemdLabels("/system.slice/docker.service/sub"), {
    "systemd:unit": ["docker.service"],
    "systemd:slice": ["system.slice"],
  });
  assert.deepEqual(
    systemdLabels("/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service"),
    {
      "systemd:unit": ["user@1000.service"],
      "systemd:slice": ["user-1000.slice"],
      "systemd:user-unit": ["foo.service"],
      "systemd:user-slice": ["app.slice"],
    },
  );
  assert.deepEqual(systemdLabels("/user.slice/user-1000.slice/session-3.scope"), {
    "systemd:unit": ["session-3.scope"],
    "systemd:slice": ["user-1000.slice"],
  });
  assert.deepEqual(systemdLabels("/"), {});
});

Deno.test("systemd: a real process in a unit-shaped cgroup v2 group", async () => {
  const tag = crypto.randomUUID().slice(0, 8);
  const cg = await createCgroup(`camblet-${tag}.slice/web-${tag}.service`);
  const p = await spawnAs({ uid: 0, gid: 0 });
  const cfg = systemdAttestor.parseConfig({});
  assert.ok(cfg.ok);
  const a = await systemdAttestor.create(cfg.value, {
    log: getLogger(["camblet", "test"]),
    clock: systemClock,
    trustDomain: "camblet",
    signal: new AbortController().signal,
  });
  try {
    await cg.add(p.pid);
    const task = taskContextFromProc(p.pid)!;
    assert.deepEqual(await a.collect(task, AbortSignal.timeout(1000)), {
      "systemd:unit": [`web-${tag}.service`],
      "systemd:slice": [`camblet-${tag}.slice`],
    });
  } finally {
    await p.stop();
    await cg.remove();
  }
});
