import assert from "node:assert/strict";
import { loadConfig } from "../config/load.ts";
import { flagValues } from "../cli/options.ts";
import { DaemonGuard, failClosedPinDir } from "./daemon_guard.ts";

const search: string[] = [];

async function guardConfig(yaml: string | undefined, env: Record<string, string> = {}, flags = {}) {
  const dir = await Deno.makeTempDir();
  try {
    const configPath = yaml === undefined ? undefined : `${dir}/config.yaml`;
    if (configPath) await Deno.writeTextFile(configPath, yaml!);
    return (await loadConfig({ configPath, env, flags, search })).config.agent.guard;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("agent.guard: fail-open by default; file, AGENT_GUARD_* and --guard-fail-closed set it", async () => {
  assert.deepEqual(await guardConfig(undefined), {
    failClosed: false,
    pinDir: "/sys/fs/bpf/camblet-guard",
  });
  const file = "agent:\n  guard: {failClosed: true, pinDir: /sys/fs/bpf/g}\n";
  assert.deepEqual(await guardConfig(file), { failClosed: true, pinDir: "/sys/fs/bpf/g" });
  assert.equal((await guardConfig(file, { AGENT_GUARD_FAILCLOSED: "false" })).failClosed, false);
  const flags = flagValues({ guardFailClosed: true });
  assert.deepEqual(flags, { "agent.guard.failClosed": true });
  assert.equal((await guardConfig(undefined, {}, flags)).failClosed, true);
});

Deno.test("agent.guard: a bad pinDir or key is refused naming the file and field", async () => {
  await assert.rejects(
    () => guardConfig("agent:\n  guard: {pinDir: relative/dir}\n"),
    (e: Error & { problems?: { source: string; field?: string; message: string }[] }) => {
      const p = e.problems?.[0];
      assert.match(p?.source ?? "", /config\.yaml$/);
      assert.equal(p?.field, "agent.guard.pinDir");
      assert.match(p?.message ?? "", /"relative\/dir" must be an absolute path/);
      return true;
    },
  );
  await assert.rejects(
    () => guardConfig("agent:\n  guard: {pinDir: /sys/fs/bpf/../x}\n"),
    /must be an absolute path without \. or \.\./s,
  );
  await assert.rejects(() => guardConfig("agent:\n  guard: {failclosed: true}\n"), /failclosed/);
});

Deno.test("failClosedPinDir: the config, with the CAMBLET_GUARD_* variables over it", () => {
  const off = { failClosed: false, pinDir: "/sys/fs/bpf/g" };
  const on = { failClosed: true, pinDir: "/sys/fs/bpf/g" };
  assert.equal(failClosedPinDir(off, {}), undefined);
  assert.equal(failClosedPinDir(on, {}), "/sys/fs/bpf/g");
  assert.equal(failClosedPinDir(undefined, {}), undefined, "no config: fail-open");
  assert.equal(failClosedPinDir(off, { CAMBLET_GUARD_FAIL_CLOSED: "1" }), "/sys/fs/bpf/g");
  assert.equal(failClosedPinDir(on, { CAMBLET_GUARD_FAIL_CLOSED: "0" }), undefined);
  assert.equal(failClosedPinDir(on, { CAMBLET_GUARD_FAIL_CLOSED: "" }), "/sys/fs/bpf/g");
  assert.equal(
    failClosedPinDir(on, { CAMBLET_GUARD_PIN_DIR: "/sys/fs/bpf/env" }),
    "/sys/fs/bpf/env",
  );
  assert.equal(
    failClosedPinDir(undefined, { CAMBLET_GUARD_FAIL_CLOSED: "true" }),
    "/sys/fs/bpf/camblet-guard",
  );
  assert.throws(
    () => failClosedPinDir(off, { CAMBLET_GUARD_FAIL_CLOSED: "yes" }),
    /CAMBLET_GUARD_FAIL_CLOSED="yes" \(environment\): use 1 or 0/,
  );
  assert.throws(
    () => failClosedPinDir(on, { CAMBLET_GUARD_PIN_DIR: "pins" }),
    /"pins" \(CAMBLET_GUARD_PIN_DIR\): it must be an absolute path/,
  );
  // The daemon reads them when it is made, before loading anything.
  assert.throws(
    () =>
      new DaemonGuard({
        trustDomain: "t",
        labelsOf: () => Promise.resolve([]),
        env: { CAMBLET_GUARD_FAIL_CLOSED: "on" },
      }),
    /CAMBLET_GUARD_FAIL_CLOSED/,
  );
});
