import assert from "node:assert/strict";
import { AuditLog, type AuditRecord } from "./audit.ts";

const rec = (n: number): AuditRecord => ({
  time: new Date(n).toISOString(),
  outcome: n % 2 ? "issued" : "refused",
  task: { pid: n, uid: 0, gid: 0, command_path: "/bin/x", command_name: "x", cgroup_path: "/" },
  durationMs: 1,
});

Deno.test("AuditLog keeps the latest records and feeds the sink", () => {
  const seen: AuditRecord[] = [];
  const log = new AuditLog({ capacity: 3, onRecord: (r) => seen.push(r) });
  for (let i = 0; i < 5; i++) log.record(rec(i));
  assert.deepEqual(log.entries().map((r) => r.task.pid), [2, 3, 4]);
  assert.equal(seen.length, 5);
  const throwing = new AuditLog({
    onRecord: () => {
      throw new Error("sink down");
    },
  });
  throwing.record(rec(1));
  assert.equal(throwing.entries().length, 1);
});
