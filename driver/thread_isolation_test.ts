/**
 * The reason the kernel is answered from a worker: the kernel blocks every accept() of ours until
 * it has our answer, so the thread that accepts must not be the one that answers. Here the main
 * thread is made to block (a synchronous 1.5 s stall inside a handler, as if stuck in an
 * intercepted accept) while requests are pending: the kernel worker still answers every one of
 * them in time, from the task context and with a refusal certificate.
 */
import assert from "node:assert/strict";
import { syntheticTask } from "./emulator/tasks.ts";
import { openHarness } from "../tests/fakes/link_harness.ts";

function stallMainThread(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* blocked, like a thread inside accept() */ }
}

Deno.test("a blocked main thread cannot make the agent miss a kernel deadline", async () => {
  const h = await openHarness();
  const { emu } = h;
  try {
    await emu.csrs.csr("spiffe://acme.test/blocked");
    // Warm the refusal for the module's key (the first csr_sign prepares it).
    await emu.csrSign("spiffe://acme.test/warm-up");
    let stalled = false;
    h.augment = () => {
      if (!stalled) {
        stalled = true;
        stallMainThread(1500);
      }
      return Promise.resolve(["late=true"]);
    };
    const pending = [
      emu.augment(syntheticTask(1, { command_name: "curl", command_path: "/usr/bin/curl" })),
      emu.augment(syntheticTask(2, { command_name: "nginx", command_path: "/usr/sbin/nginx" })),
      emu.csrSign("spiffe://acme.test/blocked"),
    ];
    const [a1, a2, c] = await Promise.all(pending);
    assert.ok(stalled, "the main thread was stalled");
    for (const r of [a1!, a2!]) {
      assert.equal(r.outcome, "answered");
      assert.ok(r.latencyMs < 1000, `augment answered after ${r.latencyMs} ms`);
      assert.ok(r.labels!.some((l) => l.startsWith("process:name=")), "task-context labels");
    }
    assert.equal(c!.outcome, "refused");
    assert.ok(c!.latencyMs < 1000, `csr_sign answered after ${c!.latencyMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  } finally {
    await h.close();
  }
  h.emu.assertHealthy();
});
