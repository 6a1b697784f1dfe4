import assert from "node:assert/strict";
import { kernelFilter, matches, TraceHub } from "./trace_hub.ts";
import type { TraceRequest } from "../../driver/codec.ts";
import { syntheticTask } from "../../driver/emulator/tasks.ts";

Deno.test("kernelFilter drops what the kernel reads as 'any' (uid 0, empty name)", () => {
  assert.deepEqual(kernelFilter({ uid: 0, command_name: "curl" }), { command_name: "curl" });
  assert.deepEqual(kernelFilter({ pid: 42, uid: 1000 }), { pid: 42, uid: 1000 });
  assert.equal(
    matches({ uid: 0, command_name: "curl" }, syntheticTask(0, { command_name: "curl", uid: 0 })),
    true,
  );
  assert.equal(
    matches({ uid: 0, command_name: "curl" }, syntheticTask(0, { command_name: "curl", uid: 5 })),
    false,
  );
});

Deno.test("TraceHub adds a kernel filter per distinct filter and removes it with the last client", async () => {
  const pushed: TraceRequest[] = [];
  const hub = new TraceHub((r) => {
    pushed.push(r);
    return Promise.resolve();
  });
  const a = await hub.subscribe({ command_name: "curl" });
  const b = await hub.subscribe({ command_name: "curl" });
  assert.deepEqual(pushed, [{ action: "add", command_name: "curl" }]);
  hub.deliver({
    command: "log",
    task: syntheticTask(1, { command_name: "curl" }),
    data: { message: "hi", x: "1" },
    isMessage: true,
  });
  hub.deliver({
    command: "log",
    task: syntheticTask(1, { command_name: "nginx" }),
    data: { message: "no" },
    isMessage: true,
  });
  const reader = a.getReader();
  const line = JSON.parse(new TextDecoder().decode((await reader.read()).value));
  assert.equal(line.message, "hi");
  assert.deepEqual(line.fields, { x: "1" });
  await reader.cancel();
  assert.equal(pushed.length, 1, "b still needs the filter");
  await b.cancel();
  assert.deepEqual(pushed[1], { action: "remove", command_name: "curl" });
  await assert.rejects(hub.subscribe({ uid: 0 }), /give a pid, a uid above 0 or a command name/);
});
