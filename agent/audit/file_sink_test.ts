import assert from "node:assert/strict";
import { FileSink } from "./file_sink.ts";
import type { AuditRecord } from "./engine.ts";

const rec = (n: number) =>
  ({
    kind: "audit",
    rule: `r${n}`,
    severity: "notice",
    output: "x".repeat(50),
  }) as unknown as AuditRecord;

Deno.test("file sink: JSON lines, mode 0600, rotated by size keeping the newest files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/audit.jsonl`;
    const s = new FileSink(path, { maxBytes: 300, keep: 2 });
    for (let i = 0; i < 20; i++) s.write(rec(i));
    s.close();
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]);
    for (const n of names) assert.ok((await Deno.stat(`${dir}/${n}`)).size <= 300);
    const last = (await Deno.readTextFile(path)).trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(last.at(-1).rule, "r19");
    const older = (await Deno.readTextFile(`${path}.1`)).trim().split("\n").map((l) =>
      JSON.parse(l).rule
    );
    assert.equal(
      Number(older.at(-1).slice(1)) + 1,
      Number(last[0].rule.slice(1)),
      "no record lost at rotation",
    );
    assert.equal(s.failed, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("file sink: an unwritable path is refused naming it", () => {
  assert.throws(
    () => new FileSink("/nonexistent-dir/audit.jsonl"),
    /Cannot open the audit log "\/nonexistent-dir\/audit.jsonl"/,
  );
});
