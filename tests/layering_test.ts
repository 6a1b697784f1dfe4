/**
 * Imports run one way: agent/ -> plugins/ -> driver/. A file under plugins/ never imports agent/;
 * a file under driver/ imports neither agent/ nor plugins/. Specifiers are parsed from the source
 * with comments removed (static, type-only, re-export, side-effect and dynamic imports, and
 * `new URL(…, import.meta.url)` for workers).
 *
 * @module
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), ".."));

/** Which top-level folders each layer must not import. */
const FORBIDDEN: Record<string, readonly string[]> = {
  plugins: ["agent"],
  driver: ["agent", "plugins"],
};

/**
 * Files under plugins/ or driver/ that may import upwards, and why. Empty: what a plugin and the
 * agent share lives in plugins/sdk (e.g. the metrics registry), and tests that need the agent
 * live under tests/.
 */
const ALLOWED: Record<string, { imports: readonly string[]; why: string }> = {};

/** Replaces comments with spaces, keeping strings and template literals intact. */
export function stripComments(src: string): string {
  let out = "";
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    const n = src[i + 1];
    if (c === "/" && n === "/") {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (c === "/" && n === "*") {
      const end = src.indexOf("*/", i + 2);
      i = end < 0 ? src.length : end + 2;
      out += " ";
    } else if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === "\\" ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const PATTERNS = [
  /\b(?:import|export)\b[^;'"`]*?\bfrom\s*(["'])([^"']+)\1/g,
  /\bimport\s*(["'])([^"']+)\1/g,
  /\bimport\s*\(\s*(["'])([^"']+)\1/g,
  /\bnew\s+URL\(\s*(["'])([^"']+)\1\s*,\s*import\.meta\.url/g,
];

/** Every module specifier `src` imports. */
export function importSpecifiers(src: string): string[] {
  const code = stripComments(src);
  const found = new Set<string>();
  for (const re of PATTERNS) for (const m of code.matchAll(re)) found.add(m[2]!);
  return [...found];
}

/** Repository-relative path a relative specifier of `file` points to, else undefined. */
function resolved(file: string, spec: string): string | undefined {
  if (!spec.startsWith("./") && !spec.startsWith("../")) return undefined;
  return relative(ROOT, normalize(join(ROOT, dirname(file), spec)));
}

/** The layering problems of one file (repository-relative path) with source `src`. */
export function layeringProblems(file: string, src: string): string[] {
  const layer = file.split("/")[0]!;
  const forbidden = FORBIDDEN[layer];
  if (!forbidden) return [];
  const problems: string[] = [];
  for (const spec of importSpecifiers(src)) {
    const target = resolved(file, spec);
    if (target === undefined) continue;
    const top = target.split("/")[0]!;
    if (!forbidden.includes(top)) continue;
    if (ALLOWED[file]?.imports.includes(target)) continue;
    problems.push(`${file}: imports "${spec}" (${target}): ${layer}/ must not import ${top}/`);
  }
  return problems;
}

async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(join(ROOT, dir))) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* sourceFiles(path);
    else if (/\.(ts|tsx|js|mjs)$/.test(e.name)) yield path;
  }
}

Deno.test("layering: agent/ -> plugins/ -> driver/, never upwards", async (t) => {
  await t.step("the parser finds every kind of import and ignores comments", () => {
    const src = [
      `import { a } from "../agent/a.ts";`,
      `import type {\n  B,\n} from '../agent/b.ts';`,
      `export { c } from "../agent/c.ts";`,
      `export * from "../agent/d.ts";`,
      `import "../agent/e.ts";`,
      `const f = await import("../agent/f.ts");`,
      `new Worker(new URL("../agent/g.ts", import.meta.url), { type: "module" });`,
      `// import { x } from "../agent/commented.ts";`,
      `/** @example\n * import { y } from "../agent/doc.ts";\n */`,
      `const s = "// not a comment"; import { h } from "../agent/h.ts";`,
    ].join("\n");
    assert.deepEqual(importSpecifiers(src).sort(), [
      "../agent/a.ts",
      "../agent/b.ts",
      "../agent/c.ts",
      "../agent/d.ts",
      "../agent/e.ts",
      "../agent/f.ts",
      "../agent/g.ts",
      "../agent/h.ts",
    ]);
  });

  await t.step("a violation is reported with file, specifier and rule", () => {
    assert.deepEqual(layeringProblems("driver/x.ts", `import { y } from "../plugins/sdk/y.ts";`), [
      `driver/x.ts: imports "../plugins/sdk/y.ts" (plugins/sdk/y.ts): driver/ must not import plugins/`,
    ]);
    assert.equal(layeringProblems("plugins/ca/z.ts", `import "../../agent/log.ts";`).length, 1);
    assert.deepEqual(layeringProblems("agent/z.ts", `import "../driver/x.ts";`), []);
    assert.deepEqual(layeringProblems("plugins/z.ts", `import "../driver/x.ts";`), []);
  });

  await t.step("no file under plugins/ or driver/ imports upwards", async () => {
    const problems: string[] = [];
    for (const layer of Object.keys(FORBIDDEN)) {
      for await (const file of sourceFiles(layer)) {
        problems.push(...layeringProblems(file, await Deno.readTextFile(join(ROOT, file))));
      }
    }
    assert.deepEqual(problems, []);
  });

  await t.step("every allowed exception is still needed", async () => {
    for (const [file, { imports }] of Object.entries(ALLOWED)) {
      const src = await Deno.readTextFile(join(ROOT, file));
      const targets = importSpecifiers(src).map((s) => resolved(file, s));
      for (const target of imports) {
        assert.ok(targets.includes(target), `${file} no longer imports ${target}: drop it`);
      }
    }
  });
});
