import assert from "node:assert/strict";
import { containerIdFromCgroup, podUidFromCgroup, readCgroupPath } from "./cgroup.ts";
import { createCgroup, spawnAs } from "../../../tests/fakes/attestor_processes.ts";

const ID = "0123456789abcdef".repeat(4);
const UID = "7d3e0a2c-5b1f-4e8a-9c6d-2f4b8a1e3c5d";

Deno.test("cgroup: container ids and pod UIDs from every common layout", () => {
  const cases: [string, string | undefined, string | undefined][] = [
    [`/docker/${ID}`, ID, undefined],
    [`/system.slice/docker-${ID}.scope`, ID, undefined],
    [`/kubepods/burstable/pod${UID}/${ID}`, ID, UID],
    [
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${
        UID.replaceAll("-", "_")
      }.slice/cri-containerd-${ID}.scope`,
      ID,
      UID,
    ],
    [`/kubepods.slice/kubepods-pod${UID.replaceAll("-", "_")}.slice/crio-${ID}.scope`, ID, UID],
    [`/user.slice/user-1000.slice/session-2.scope`, undefined, undefined],
    ["/", undefined, undefined],
  ];
  for (const [path, id, uid] of cases) {
    assert.equal(containerIdFromCgroup(path), id, path);
    assert.equal(podUidFromCgroup(path), uid, path);
  }
});

Deno.test("cgroup: the v2 path of a real process in a cgroup the test creates", async () => {
  const cg = await createCgroup(
    `camblet-test-${crypto.randomUUID().slice(0, 8)}/kubepods/pod${UID}/${ID}`,
  );
  const p = await spawnAs({ uid: 0, gid: 0 });
  try {
    await cg.add(p.pid);
    const path = await readCgroupPath(p.pid);
    assert.equal(path, cg.path);
    assert.equal(containerIdFromCgroup(path!), ID);
    assert.equal(podUidFromCgroup(path!), UID);
  } finally {
    await p.stop();
    await cg.remove();
  }
  assert.equal(await readCgroupPath(p.pid), undefined, "gone process: no path");
});
