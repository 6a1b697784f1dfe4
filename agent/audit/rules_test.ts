import assert from "node:assert/strict";
import { AuditRulesError, compileFilter } from "./rules.ts";

Deno.test("compileFilter: the union of the rules' declarations; a syscall is path-filtered only if every rule naming it gives prefixes", () => {
  const f = compileFilter([
    { rule: "a", syscalls: ["openat", "open"], prefixes: ["/etc/"] },
    { rule: "b", syscalls: ["openat"], prefixes: ["/usr/bin/"] },
    { rule: "c", syscalls: ["open"] },
    { rule: "d", syscalls: ["execve", "connect"] },
  ], "test");
  assert.deepEqual(f.syscalls, ["connect", "execve", "open", "openat"]);
  assert.deepEqual(f.pathFiltered, ["openat"]);
  assert.deepEqual(f.prefixes, ["/etc/", "/usr/bin/"]);
});

Deno.test("compileFilter: prefixes on a syscall without a path argument do not filter it", () => {
  const f = compileFilter([{ rule: "m", syscalls: ["connect"], prefixes: ["/x/"] }], "t");
  assert.deepEqual(f.pathFiltered, []);
});

Deno.test("compileFilter: bad declarations name the source, the rule and the field", () => {
  assert.throws(
    () => compileFilter([{ rule: "Fork bomb", syscalls: ["fork"] }], "rules.tar.gz"),
    (e: Error) =>
      e instanceof AuditRulesError &&
      /rules\.tar\.gz: rule "Fork bomb": syscall "fork"/.test(e.message),
  );
  assert.throws(
    () => compileFilter([{ rule: "r", syscalls: [] }], "s"),
    /rule "r": syscalls must be/,
  );
  assert.throws(
    () => compileFilter([{ rule: "r", syscalls: ["openat"], prefixes: ["etc/"] }], "s"),
    /rule "r": prefixes must be absolute/,
  );
  assert.throws(() => compileFilter([42], "s"), /s: filter item 0: not an object/);
  assert.throws(() => compileFilter({}, "s"), /filter is not a set/);
});
