/**
 * Object.prototype names (`constructor`, `toString`, `__proto__`, `hasOwnProperty`, `valueOf`)
 * pushed through the surfaces where input names a key: kernel command names, ids and task-context
 * fields, kernel log fields (trace), attestor labels (maps from docker/kubelet JSON and plugins),
 * the augment answer, policy content ids, and the kernel metrics. Each must treat them as plain
 * strings: no throw, nothing inherited read, nothing lost.
 */
import assert from "node:assert/strict";
import { traceLine } from "../../agent/control/trace_hub.ts";
import { canonicalJson } from "../../agent/policy/content_id.ts";
import { augmentAnswer } from "../../driver/answers.ts";
import { parseKernelLine } from "../../driver/codec.ts";
import { syntheticTask } from "../../driver/emulator/tasks.ts";
import { KernelStats } from "../../driver/stats.ts";
import { LabelBuilder, labelStrings, mergeLabels } from "../../plugins/attestor/_lib/labels.ts";

const KEYS = ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"];
const ID = "6F1C0A52-7B8D-4E3F-9A61-0C2D3E4F5A6B";

/** A JSON object with `k` as an own key, as JSON.parse builds it from an upstream's answer. */
const withKey = (k: string, v: unknown) =>
  JSON.parse(`{${JSON.stringify(k)}:${JSON.stringify(v)}}`);

Deno.test("prototype keys through every input surface", async (t) => {
  await t.step("kernel lines: command, id, task fields, log fields", () => {
    for (const k of KEYS) {
      const cmd = parseKernelLine(
        JSON.stringify({ task_context: syntheticTask(1), id: ID, command: k, is_message: false }),
      );
      assert.ok(!cmd.ok && cmd.reason === "unknown_command" && cmd.recovered.id === ID);
      const id = parseKernelLine(JSON.stringify({ id: k, command: "augment", is_message: false }));
      assert.ok(!id.ok && id.recovered.id === undefined);
      const task = parseKernelLine(JSON.stringify({
        task_context: { ...syntheticTask(1), command_name: k, ...withKey(k, 1) },
        id: ID,
        command: "augment",
        is_message: false,
      }));
      assert.ok(
        task.ok && task.message.command === "augment" && task.message.task.command_name === k,
      );
      const log = parseKernelLine(JSON.stringify({
        task_context: syntheticTask(1),
        command: "log",
        data: JSON.stringify({ message: "m", ...withKey(k, "v") }),
        is_message: true,
      }));
      assert.ok(log.ok && log.message.command === "log");
      // Through the thread boundary and into a trace line, the field is kept.
      const line = traceLine(structuredClone(log.message));
      assert.equal(Object.getOwnPropertyDescriptor(line.fields, k)?.value, "v", k);
    }
  });

  await t.step("kernel statistics", () => {
    const s = new KernelStats();
    for (const k of KEYS) s.record(k, "error", 1);
    assert.deepEqual(Object.keys(s.snapshot().requests), ["other"]);
  });

  await t.step("attestor labels from upstream JSON and plugins", () => {
    for (const k of KEYS) {
      const b = new LabelBuilder("docker").addMap("label", withKey(k, "x"));
      assert.deepEqual(labelStrings(b.build()), [`docker:label:${k}=x`]);
      // A plugin may name a label anything; merging must neither throw nor drop it.
      const merged = mergeLabels(withKey(k, ["a"]), withKey(k, ["b"]), { "app:name": ["c"] });
      assert.deepEqual(labelStrings(merged), [`${k}=a`, `${k}=b`, "app:name=c"].sort());
      assert.equal(Object.getPrototypeOf(merged), Object.prototype);
    }
  });

  await t.step("the augment answer", () => {
    for (const k of KEYS) {
      const a = augmentAnswer([`${k}=x`, k]);
      assert.deepEqual(JSON.parse(a.answer), { labels: { [`${k}=x`]: true } });
      assert.deepEqual(a.dropped, [k]);
    }
  });

  await t.step("policy content ids: a __proto__ key is part of the content", () => {
    for (const k of KEYS) {
      const doc = { ...withKey(k, { a: 1 }), id: "x" };
      assert.notEqual(canonicalJson(doc), canonicalJson({ id: "x" }), k);
      assert.match(canonicalJson(doc), new RegExp(`"${k}":\\{"a":1\\}`));
    }
  });
});
