import assert from "node:assert/strict";
import { embedWorkersLine, WORKER_CODE_GLOBAL, workerModuleUrl } from "./worker_code.ts";

// What `deno bundle` emits for code that requires Node built-ins, plus a nested worker's code.
const NESTED = `postMessage("nested " + name);`;
const WORKER = `import { createRequire as __deno_internal_createRequire } from "node:module";
var __require = __deno_internal_createRequire(import.meta.url);
const inner = globalThis.${WORKER_CODE_GLOBAL}?.["t-nested"];
const n = new Worker(URL.createObjectURL(new Blob([inner()])), { type: "module", name: "t-nested" });
n.onmessage = (e) => { postMessage([__require("node:path").sep, name, e.data]); n.terminate(); };
`;

function runEmbedded(line: string): Record<string, unknown> {
  const scope: Record<string, unknown> = {};
  new Function("globalThis", line)(scope);
  return scope[WORKER_CODE_GLOBAL] as Record<string, unknown>;
}

Deno.test("without embedded code a worker runs its own module", () => {
  delete (globalThis as Record<string, unknown>)[WORKER_CODE_GLOBAL];
  assert.equal(workerModuleUrl("t-none", import.meta.url), import.meta.url);
});

Deno.test("embedded code starts from a blob, requires built-ins and starts its own nested worker", async () => {
  const inner = embedWorkersLine({ "t-nested": NESTED });
  const line = embedWorkersLine({ "t-outer": inner + WORKER });
  const g = globalThis as Record<string, unknown>;
  g[WORKER_CODE_GLOBAL] = runEmbedded(line);
  try {
    const url = workerModuleUrl("t-outer", import.meta.url);
    assert.match(url, /^blob:/);
    // The string is dropped once the blob holds it; the same URL serves a restart.
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
    assert.deepEqual(got, ["/", "t-outer", "nested t-nested"]);
  } finally {
    delete g[WORKER_CODE_GLOBAL];
  }
});

Deno.test("the embedding line keeps any code intact (quotes, newlines, backslashes, non-ASCII)", () => {
  const code = "const s = `a\\nb` + '\"' + \"\\u00b5\" + 'µ';\n// →\n";
  const codes = runEmbedded(embedWorkersLine({ x: code }));
  assert.equal(Object.getPrototypeOf(codes), null);
  assert.equal((codes["x"] as () => string)(), code);
});
