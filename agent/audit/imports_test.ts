// The audit modules import each other without cycles (rules.ts -> prefilter.ts used to cycle back
// for AuditRulesError): a cycle makes the load order decide which exports are still undefined.
import assert from "node:assert/strict";

Deno.test("agent/audit: no import cycle among its modules (deno info's graph)", async () => {
  const dir = new URL(".", import.meta.url).href;
  const roots = [...Deno.readDirSync(new URL(".", import.meta.url))]
    .filter((e) => e.name.endsWith(".ts") && !e.name.endsWith("_test.ts"))
    .map((e) => `${dir}${e.name}`);
  // One graph from each root (deno info takes one), merged.
  const edges = new Map<string, string[]>();
  for (const root of roots) {
    const o = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", root],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(o.success, `deno info ${root}: ${new TextDecoder().decode(o.stderr)}`);
    const g = JSON.parse(new TextDecoder().decode(o.stdout)) as {
      modules: { specifier: string; dependencies?: { code?: { specifier?: string } }[] }[];
    };
    for (const m of g.modules) {
      if (!m.specifier.startsWith(dir)) continue;
      const deps = (m.dependencies ?? []).map((d) => d.code?.specifier ?? "")
        .filter((s) => s.startsWith(dir) && !s.slice(dir.length).includes("/"));
      edges.set(m.specifier, deps);
    }
  }
  assert.ok(edges.size >= roots.length, `graph has ${edges.size} of ${roots.length} modules`);
  const cycles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const walk = (m: string, path: string[]) => {
    if (state.get(m) === "done") return;
    if (state.get(m) === "open") {
      cycles.push([...path.slice(path.indexOf(m)), m].map((s) => s.slice(dir.length)).join(" -> "));
      return;
    }
    state.set(m, "open");
    for (const d of edges.get(m) ?? []) walk(d, [...path, m]);
    state.set(m, "done");
  };
  for (const m of edges.keys()) walk(m, []);
  assert.deepEqual(cycles, []);
});
