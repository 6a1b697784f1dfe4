/**
 * Large policy sets through `PolicySources` (a `file` source, `refresh()` as on SIGHUP), from the
 * file change to the set refused or in force, and the longest the calling thread (the one that
 * answers the kernel, the proxy and the control socket) went without running a 5 ms timer
 * meanwhile ("stall", printed once per row):
 *
 * - 94,000 policies in one 7 MB file: refused from its text before parsing.
 * - 9,000 policies with long selector values in one 7 MB file: within the entry bound, so parsed
 *   and compiled (on the policy worker), then refused for the size of its kernel message.
 * - 5,000 policies in 50 files: accepted.
 *
 * Run: deno bench -A agent/sources/big_set_bench.ts
 */
import { join } from "node:path";
import { PolicySources } from "./policy_sources.ts";
import { specsFor } from "../../tests/sources/_specs.ts";

const policy = (i: number, pad = "") =>
  `- selectors: [{process:name: p${i}${pad}}]\n  certificate: {workloadID: w${i}}\n`;

function many(n: number, pad = ""): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(policy(i, pad));
  return out.join("");
}

async function measure(
  name: string,
  files: Record<string, string>,
  expect: "rejected" | "ok",
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "camblet-big-bench-" });
  const pol = join(dir, "policies");
  await Deno.mkdir(pol);
  await Deno.writeTextFile(join(pol, "base.yaml"), policy(-1));
  const specs = specsFor([{ type: "file", name: "big", policies: pol, debounce: "1h" }]);
  const sources = await PolicySources.start({ specs, trustDomain: "acme.test" });
  let stall = 0;
  try {
    Deno.bench(name, { n: 3, warmup: 0 }, async (b) => {
      for (const [f, text] of Object.entries(files)) await Deno.writeTextFile(join(pol, f), text);
      let last = performance.now();
      const tick = setInterval(() => {
        const now = performance.now();
        stall = Math.max(stall, now - last);
        last = now;
      }, 5);
      b.start();
      await sources.refresh();
      b.end();
      clearInterval(tick);
      // A block that lasted to the end ran no tick at all.
      stall = Math.max(stall, performance.now() - last);
      const state = sources.status().sources[0]!.state;
      if (state !== expect) throw new Error(`${name}: ${state}, expected ${expect}`);
      // The next round starts from the small set again.
      for (const f of Object.keys(files)) await Deno.remove(join(pol, f));
      await sources.refresh();
    });
  } finally {
    globalThis.addEventListener("unload", () => {
      console.log(`${name}: longest stall of the calling thread ${stall.toFixed(0)} ms`);
      void sources.dispose().then(() => Deno.remove(dir, { recursive: true }));
    });
  }
}

const fiveThousand: Record<string, string> = {};
for (let f = 0; f < 50; f++) {
  fiveThousand[`team${String(f).padStart(2, "0")}.yaml`] = Array.from(
    { length: 100 },
    (_, i) => policy(f * 100 + i),
  ).join("");
}

await measure(
  "94,000 policies, 7 MB: refused before parsing",
  { "big.yaml": many(94_000) },
  "rejected",
);
await measure(
  "9,000 long policies, 7 MB: parsed and compiled, then refused for its size",
  { "big.yaml": many(9_000, "x".repeat(700)) },
  "rejected",
);
await measure("5,000 policies in 50 files: accepted", fiveThousand, "ok");
