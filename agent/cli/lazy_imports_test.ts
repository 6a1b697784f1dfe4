import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

// What the main isolate holds is the static import graph of the CLI (main.ts loads
// agent/cli/program.ts, which statically reaches the daemon): these modules are loaded with
// import() where they are used, and must not creep back into that graph (issue 12: each one is
// source, compiled code and heap in every running agent that does not use it).
const LAZY = [
  "driver/bpf/guard.ts", // runtime guard: only when a policy has a runtime: section
  "driver/bpf/guard_object.ts",
  "agent/guard/mod.ts",
  "agent/guard/selection.ts",
  "agent/audit/engine.ts", // syscall audit: only when agent.audit is on, or `audit` runs
  "agent/audit/context.ts",
  "plugins/ca/spire/spire_ca.ts", // CAs: only when the config selects them
  "plugins/ca/vault/intermediate_ca.ts",
  "plugins/ca/vault/leaf_ca.ts",
  "agent/cli/audit_actions.ts", // subcommands: only when they run
  "agent/cli/explain_runtime_run.ts",
  "agent/cli/explain_render.ts",
  "agent/policy/match.ts",
  "npm:@open-policy-agent/opa-wasm", // only with an issuance hook or audit rules
  "npm:jose", // only when a signed bundle is verified
];

interface InfoModule {
  specifier: string;
  dependencies?: { code?: { specifier?: string }; isDynamic?: boolean }[];
}

Deno.test("the CLI's static import graph leaves the guard, audit, CAs and subcommands lazy", async () => {
  const root = new URL("./program.ts", import.meta.url).href;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", fileURLToPath(root)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const modules = new Map<string, InfoModule>();
  for (const m of JSON.parse(new TextDecoder().decode(out.stdout)).modules as InfoModule[]) {
    modules.set(m.specifier, m);
  }
  const seen = new Set<string>();
  const todo = [root];
  while (todo.length) {
    const s = todo.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    for (const d of modules.get(s)?.dependencies ?? []) {
      if (!d.isDynamic && d.code?.specifier) todo.push(d.code.specifier);
    }
  }
  const base = new URL("../../", import.meta.url).href;
  const loaded = [...seen].map((s) => s.startsWith(base) ? s.slice(base.length) : s);
  // The check itself must see the graph: the daemon is in it.
  assert.ok(loaded.includes("agent/daemon/daemon.ts"), loaded.join("\n"));
  const eager = LAZY.filter((l) => loaded.some((s) => s === l || s.startsWith(`${l}@`)));
  assert.deepEqual(eager, [], `statically imported again: ${eager.join(", ")}`);
});
