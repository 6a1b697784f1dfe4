import assert from "node:assert/strict";
import { type AuditLogger, logSink } from "./log_sink.ts";
import type { AuditRecord } from "./engine.ts";

Deno.test("log sink: one line per violation, its level from the severity, with process and identity", () => {
  const lines: [string, string, Record<string, unknown>][] = [];
  const log: AuditLogger = {
    error: (m, p) => lines.push(["error", m, p]),
    warn: (m, p) => lines.push(["warn", m, p]),
    info: (m, p) => lines.push(["info", m, p]),
    debug: (m, p) => lines.push(["debug", m, p]),
  };
  const rec = (severity: string) =>
    ({
      rule: "Write below etc",
      severity,
      output: "o",
      event: { syscall: "openat", path: "/etc/x" },
      process: { pid: 7, name: "touch", ancestors: [{ pid: 6, name: "sh", exe: "/bin/sh" }] },
      container: { id: "c1", labels: {} },
      spiffe_id: "spiffe://example.org/w",
    }) as unknown as AuditRecord;
  const sink = logSink(log);
  for (const s of ["critical", "warning", "notice", "debug"]) sink(rec(s));
  assert.deepEqual(lines.map((l) => l[0]), ["error", "warn", "info", "debug"]);
  assert.equal(lines[0]![1], "Audit: Write below etc");
  assert.deepEqual(lines[0]![2], {
    severity: "critical",
    output: "o",
    syscall: "openat",
    path: "/etc/x",
    pid: 7,
    process: "touch",
    parent: "sh",
    container: "c1",
    spiffeId: "spiffe://example.org/w",
  });
});
