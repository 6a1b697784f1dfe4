import assert from "node:assert/strict";
import { AuditRulesError, compileScopes, inScope } from "./rules.ts";
import { compileFilter } from "./prefilter.ts";

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

Deno.test("compileScopes: an event reaches the wasm only when some rule naming its syscall covers its path", () => {
  const s = compileScopes(compileFilter([
    { rule: "etc", syscalls: ["openat", "open"], prefixes: ["/etc/"] },
    { rule: "logs", syscalls: ["openat", "truncate"], prefixes: ["/var/log/"] },
    { rule: "conn", syscalls: ["connect"], prefixes: ["/x/"] },
    { rule: "any open", syscalls: ["open"] },
  ], "test"));
  assert.ok(inScope(s, "openat", "/etc/passwd"));
  assert.ok(inScope(s, "openat", "/var/log/syslog"));
  assert.ok(!inScope(s, "openat", "/usr/lib/libc.so.6"));
  // The kernel's one prefix set lets this through (/etc/ is a prefix); no rule naming truncate has it.
  assert.ok(!inScope(s, "truncate", "/etc/passwd"));
  assert.ok(inScope(s, "truncate", "/var/log/wtmp"));
  assert.ok(inScope(s, "open", "/usr/lib/x"), "a rule takes open whatever the path");
  // connect has no path argument: prefixes do not narrow it.
  assert.ok(inScope(s, "connect", ""));
  assert.ok(inScope(s, "openat", "relative/unresolved"), "an unresolved path is the rules' call");
  assert.ok(!inScope(s, "execve", "/usr/bin/id"), "no rule names execve");
});

Deno.test("compileScopes: scopes come only from a filter compileFilter validated", () => {
  assert.throws(
    () =>
      compileScopes(compileFilter([{ rule: "r", syscalls: ["openat"], prefixes: ["etc/"] }], "s")),
    /s: rule "r": prefixes must be absolute/,
  );
});
