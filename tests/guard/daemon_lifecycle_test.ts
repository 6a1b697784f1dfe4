/**
 * The runtime guard in the real agent, in a Debian 6.1 guest (one boot): the events and status
 * CLIs against a running agent, and what stopping it does (detached by default; fail-closed
 * pins kept, taken over by the next agent, lifted by removing them). Skipped, with the reason,
 * where qemu or the kernel image is missing.
 */
import assert from "node:assert/strict";
import { skip } from "../_skip.ts";
import { guestUnavailable, runInGuest } from "./_guest.ts";
import { runCli } from "../cli/_run.ts";

const why = guestUnavailable();

Deno.test({
  name: "runtime guard in the agent (guest): events, status, stop behaviour, fail-closed pins",
  ignore: skip(why),
  sanitizeResources: false,
  async fn(t) {
    // RSA key generation is slow under TCG: the guest agents get a CA made here.
    const { checks, dir, output } = await runInGuest(
      "tests/guard/guest_daemon.ts",
      [],
      async (d) => {
        const r = await runCli(["ca", "create-root", "Guard test CA"]);
        assert.equal(r.code, 0, r.stderr);
        await Deno.writeTextFile(`${d}/ca.pem`, r.stdout, { mode: 0o600 });
      },
    );
    try {
      assert.ok(checks.length >= 9, `only ${checks.length} checks ran:\n${output.slice(-3000)}`);
      for (const c of checks) {
        await t.step(c.name, () => assert.ok(c.ok, `${c.name}: ${c.detail}`));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
