// Native tests of the refused-load paths; enforcement is tested in a guest (tests/guard/).
import assert from "node:assert/strict";
import { skip } from "../../tests/_skip.ts";
import { GuardCapabilityError, GuardPrograms, lsmProblem } from "./guard.ts";

Deno.test("lsmProblem names the boot parameter to set", () => {
  assert.equal(lsmProblem("lockdown,capability,yama,bpf\n"), undefined);
  assert.match(
    lsmProblem("lockdown,capability,landlock")!,
    /without "bpf".*never run.*lsm=lockdown,capability,landlock,bpf/,
  );
  assert.match(lsmProblem(undefined)!, /securityfs/);
});

const root = Deno.uid() === 0;

Deno.test({
  name: "load refuses a kernel whose LSM list lacks bpf, before loading anything",
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(`${dir}/lsm`, "capability,landlock,yama,apparmor");
      assert.throws(
        () => GuardPrograms.load({ agentTgid: Deno.pid, lsmListPath: `${dir}/lsm` }),
        (e) =>
          e instanceof GuardCapabilityError &&
          /lsm=capability,landlock,yama,apparmor,bpf/.test(e.message),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "load turns the kernel's EPERM for LSM programs into a capability error",
  ignore: skip(!root && "needs root (loads the eBPF guard programs)"),
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      // bpf is listed, so the load is really tried; kernels like this host's refuse it.
      await Deno.writeTextFile(`${dir}/lsm`, "capability,bpf");
      let loaded: GuardPrograms | undefined;
      try {
        loaded = GuardPrograms.load({ agentTgid: Deno.pid, lsmListPath: `${dir}/lsm` });
      } catch (e) {
        assert.ok(e instanceof GuardCapabilityError, String(e));
        assert.match(e.message, /refused them \(EPERM/);
        return;
      }
      // A kernel that allows BPF LSM: then every hook is attached.
      try {
        assert.equal(loaded.attached.length, 20);
      } finally {
        loaded.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
