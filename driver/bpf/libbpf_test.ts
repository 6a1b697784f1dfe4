import assert from "node:assert/strict";
import { CapabilityError } from "../errors.ts";
import { cstr, isBpffs, isCgroup2, loadLibbpf } from "./libbpf.ts";

Deno.test("a missing libbpf is a CapabilityError naming the Debian package", () => {
  assert.throws(
    () => loadLibbpf("libbpf-does-not-exist.so.1"),
    (e: unknown) =>
      e instanceof CapabilityError && /libbpf-does-not-exist\.so\.1/.test(e.message) &&
      /Debian package libbpf1/.test(e.message),
  );
});

Deno.test("cstr is NUL-terminated UTF-8", () => {
  assert.deepEqual([...cstr("ab")], [97, 98, 0]);
});

Deno.test("filesystem probes: /proc is neither cgroup2 nor bpffs", () => {
  assert.equal(isCgroup2("/proc"), false);
  assert.equal(isBpffs("/proc"), false);
  assert.equal(isCgroup2("/does/not/exist"), false);
});
