import assert from "node:assert/strict";
import { embedWorkersLine, WORKER_CODE_GLOBAL, workerModuleUrl } from "./worker_code.ts";

// What `deno bundle` emits for code that requires Node built-ins.
const WORKER = `import { createRequire as __deno_internal_createRequire } from "node:module";
var __require = __deno_internal_createRequire(import.meta.url);
postMessage([__require("node:path").sep, name]);
`;

function runEmbedded(line: string): Record<string, unknown> {
  const scope: Record<string, unknown> = {};
  new Function("globalThis", line)(scope);
  return scope[WORKER_CODE_GLOBAL] as Record<string, unknown>;
}

/** The code `workerModuleUrl` starts for the embedded `name`. */
async function codeOf(codes: Record<string, unknown>, name: string): Promise<string> {
  const g = globalThis as Record<string, unknown>;
  g[WORKER_CODE_GLOBAL] = codes;
  try {
    return await (await fetch(workerModuleUrl(name, import.meta.url))).text();
  } finally {
    delete g[WORKER_CODE_GLOBAL];
  }
}

Deno.test("without embedded code a worker runs its own module", () => {
  delete (globalThis as Record<string, unknown>)[WORKER_CODE_GLOBAL];
  assert.equal(workerModuleUrl("t-none", import.meta.url), import.meta.url);
});

Deno.test("embedded code starts from a blob and requires built-ins", async () => {
  const line = embedWorkersLine({ "t-outer": WORKER });
  const g = globalThis as Record<string, unknown>;
  g[WORKER_CODE_GLOBAL] = runEmbedded(line);
  try {
    const url = workerModuleUrl("t-outer", import.meta.url);
    assert.match(url, /^blob:/);
    // The packed string is dropped once the blob holds the code; the same URL serves a restart.
    assert.equal((g[WORKER_CODE_GLOBAL] as Record<string, unknown>)["t-outer"], undefined);
    assert.equal(workerModuleUrl("t-outer", import.meta.url), url);
    const w = new Worker(url, { type: "module", name: "t-outer" });
    const got = await new Promise<unknown>((resolve, reject) => {
      w.onmessage = (e) => resolve(e.data);
      w.onerror = (e) => {
        e.preventDefault();
        reject(new Error(e.message));
      };
    });
    w.terminate();
    assert.deepEqual(got, ["/", "t-outer"]);
  } finally {
    delete g[WORKER_CODE_GLOBAL];
  }
});

Deno.test("the embedding line keeps any code intact (quotes, newlines, backslashes, non-ASCII) and packs it", async () => {
  const code = "const s = `a\\nb` + '\"' + \"\\u00b5\" + 'µ';\n// →\n";
  const codes = runEmbedded(embedWorkersLine({ x: code }));
  assert.equal(Object.getPrototypeOf(codes), null);
  assert.equal(await codeOf(codes, "x"), code);
  // Bundled code compresses well: the main isolate keeps the packed form in its heap.
  const big = Array.from({ length: 2000 }, (_, i) => `export const v${i} = ${i};\n`).join("");
  const line = embedWorkersLine({ big });
  assert.ok(line.length < big.length / 3, `${line.length} of ${big.length} characters`);
  assert.equal(await codeOf(runEmbedded(line), "big"), big);
});
