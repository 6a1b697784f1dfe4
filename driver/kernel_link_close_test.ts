/**
 * Closing the kernel link answers every request it has read: those in flight when the close
 * begins, and those the kernel sends while it waits for them (the reader is still in `read()`
 * then, and what that read returns is requests the module waits on). An unanswered `csr_sign`
 * crashes camblet-driver.
 */
import assert from "node:assert/strict";
import { syntheticTask } from "./emulator/tasks.ts";
import { openHarness } from "../tests/fakes/link_harness.ts";
import { until } from "../tests/fakes/until.ts";

Deno.test("closing the kernel link answers requests read while it drains", async () => {
  const h = await openHarness();
  const { emu } = h;
  let release!: () => void;
  let held = false;
  h.augment = (task) =>
    new Promise((resolve) => {
      held = true;
      release = () => resolve([`process:name=${task.command_name}`, "test:held=yes"]);
    });
  let closing: Promise<void> | undefined;
  try {
    const first = emu.augment(syntheticTask(1));
    await until(() => held, "the first request to reach its handler");
    h.augment = (task) => Promise.resolve([`process:name=${task.command_name}`]);
    closing = h.link.close();
    await until(
      () => h.events.some((e) => e.message.startsWith("Closing the kernel device")),
      "the close to start waiting for the request in flight",
    );
    release();
    assert.deepEqual((await first).labels, ["process:name=python3", "test:held=yes"]);
    // The link has nothing in flight now: it stops reading, but its reader sits in read() until
    // the kernel sends something. These requests are what that read returns.
    const late = await emu.csrSign("spiffe://acme.test/late");
    assert.equal(late.outcome, "issued", JSON.stringify(late.check?.problems));
    await closing;
  } finally {
    release?.();
    await (closing ?? h.link.close());
    await emu.close();
  }
  emu.assertHealthy();
});
