/**
 * A plain object used as a map keyed by input reads `constructor`, `toString`, `__proto__` … from
 * Object.prototype: one kernel line with such a command name once ended the agent. This scan
 * fails when a new map is built as `Record<string, …> = {}` (or `??= {}`) in agent/, plugins/ or
 * driver/ without being on the reviewed list below; input-keyed maps are `Map` or
 * `Object.create(null)`.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
const PATTERN = /Record<string, [^=]+> = \{\}|: Labels = \{\}|\?\?= \{\}|= \{\} as Record<string/;

/** `file: variable` → why its keys are not input (reviewed for issue "Hostile input"). */
const REVIEWED: Record<string, string> = {
  "agent/config/load.ts: origins":
    "keys are config paths the schema accepted (unknown keys refused)",
  "agent/daemon/plugin_health.ts: out": "keys are kind/name of configured plugins",
  "agent/daemon/proxy_plane.ts: connections":
    "keys are direction/outcome from the data plane's code",
  "agent/daemon/status.ts: latency": "keys are the bounded command labels of driver/stats.ts",
  "agent/daemon/daemon.ts: #reloads": "keys are reload outcomes from the daemon's code",
  "agent/policy/compile.ts: certificate": "fixed field names",
  "agent/policy/compile.ts: connection": "fixed field names",
  "agent/cli/options.ts: out": "keys are CLI option names from commander",
  "agent/sources/policy_sources.ts: sources": "keys are configured source names",
  "agent/log.ts: out": "keys are the code's log property names",
  "plugins/attestor/linuxos/linuxos.ts: out":
    "keys match ^[A-Z_][A-Z0-9_]*$: no Object.prototype name",
  "plugins/attestor/process/proc_files.ts: f": "keys of /proc/<pid>/status are the kernel's",
  "plugins/policy_source/git/git_source.ts: env": "fixed environment names",
  "plugins/ca/spire/config.ts: env": "a default parameter (the process environment)",
  "plugins/ca/vault/config.ts: env": "a default parameter (the process environment)",
  "plugins/sdk/grpc.ts: metadata": "a default parameter; keys are the caller's header names",
  "plugins/sdk/pem.ts: headers":
    "PEM header names are read only by fixed name; left plain: its test compares with literals",
  "driver/proxy/outbound.ts: out": "fixed field names",
  "plugins/attestor/_lib/labels.ts: #labels": "written only through listOf (own properties)",
  "plugins/attestor/_lib/labels.ts: out": "written only through listOf (own properties)",
  "plugins/external.ts: out": "written with Object.defineProperty (own properties)",
  "plugins/attestor/containerd/containerd.ts: labels":
    "an empty default, replaced by a LabelBuilder's",
};

function* sources(dir: URL, rel: string): Generator<[string, string]> {
  for (const e of Deno.readDirSync(dir)) {
    const path = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) yield* sources(new URL(`${e.name}/`, dir), path);
    else if (
      e.name.endsWith(".ts") && !/_test\.ts$|_bench\.ts$|^_test_/.test(e.name)
    ) yield [path, Deno.readTextFileSync(new URL(e.name, dir))];
  }
}

Deno.test("maps keyed by input are Map or null-prototype objects (reviewed list)", () => {
  const found: string[] = [];
  const seen = new Set<string>();
  for (const top of ["agent", "plugins", "driver"]) {
    for (const [path, text] of sources(new URL(`${top}/`, ROOT), top)) {
      for (const line of text.split("\n")) {
        if (!PATTERN.test(line)) continue;
        const name = /(#?[A-Za-z_$][\w$]*)\s*(?::[^=]*)?(?:\?\?)?= \{\}/.exec(line.trim())?.[1] ??
          "?";
        const key = `${path}: ${name}`;
        seen.add(key);
        if (!Object.hasOwn(REVIEWED, key)) found.push(`${key}    ${line.trim()}`);
      }
    }
  }
  assert.deepEqual(
    found,
    [],
    "a plain object map that is not on the reviewed list: use a Map or Object.create(null), or " +
      "add it to REVIEWED with the reason its keys cannot be input",
  );
  // The list stays honest: an entry whose code is gone is removed.
  const stale = Object.keys(REVIEWED).filter((k) => !seen.has(k));
  assert.deepEqual(stale, [], "reviewed entries that no longer match any code");
});

Deno.test("the scan catches the shape that killed the agent", () => {
  for (
    const line of [
      "  #requests: Record<string, Record<string, number>> = {};",
      "    const byOutcome = this.#requests[command] ??= {};",
      "  const m = {} as Record<string, number>;",
    ]
  ) assert.ok(PATTERN.test(line), line);
  assert.ok(!PATTERN.test("  const m: Record<string, number> = Object.create(null);"));
});
