/**
 * A real Docker container confined by its container label: dockerd (the host's binaries) runs in
 * the Debian 6.1 guest, one boot (tests/guard/guest_docker.ts). Skipped, with the reason, where
 * qemu, the kernel image or Docker is missing.
 */
import assert from "node:assert/strict";
import { skip } from "../_skip.ts";
import { guestUnavailable, runInGuest } from "./_guest.ts";

function onPath(cmd: string): boolean {
  return (Deno.env.get("PATH") ?? "").split(":").some((d) => {
    try {
      return Deno.statSync(`${d}/${cmd}`).isFile;
    } catch {
      return false;
    }
  });
}

const missing = ["dockerd", "docker", "containerd", "runc", "busybox"].find((c) => !onPath(c));
const why = guestUnavailable() ??
  (missing ? `${missing} is not installed (Debian: docker.io busybox-static)` : undefined);

Deno.test({
  name: "runtime guard in a Debian 6.1 guest: a Docker container selected by its label",
  ignore: skip(why),
  sanitizeResources: false,
  async fn(t) {
    const { checks, dir, output } = await runInGuest("tests/guard/guest_docker.ts");
    try {
      assert.ok(checks.length >= 6, `only ${checks.length} checks ran:\n${output.slice(-3000)}`);
      for (const c of checks) {
        await t.step(c.name, () => assert.ok(c.ok, `${c.name}: ${c.detail}`));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
