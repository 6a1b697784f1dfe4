/**
 * Runtime guard enforcement, for real: one boot of a Debian 6.1 guest (bpf in its LSM list)
 * runs tests/guard/guest_enforce.ts, which loads the guard with real attestation and runs real
 * commands in and out of a test cgroup and of label-selected processes. Skipped, with the
 * reason, where qemu or the kernel image is missing.
 */
import assert from "node:assert/strict";
import { skip } from "../_skip.ts";
import { guestUnavailable, runInGuest } from "./_guest.ts";

const why = guestUnavailable();

Deno.test({
  name: "runtime guard in a Debian 6.1 guest: denies in the workload, allows outside",
  ignore: skip(why),
  sanitizeResources: false,
  async fn(t) {
    const { checks, dir } = await runInGuest("tests/guard/guest_enforce.ts", [], async (d) => {
      const cc = await new Deno.Command("gcc", {
        args: ["-O2", "-o", `${d}/probes`, new URL("c/probes.c", import.meta.url).pathname],
        stderr: "piped",
      }).output();
      assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
    });
    try {
      assert.ok(checks.length >= 35, `only ${checks.length} checks ran`);
      for (const c of checks) {
        await t.step(c.name, () => assert.ok(c.ok, `${c.name}: ${c.detail}`));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
