import assert from "node:assert/strict";
import { asciiOnly } from "./bundle.ts";

Deno.test("asciiOnly escapes non-ASCII text to the same values", () => {
  const code = 'const a = "µs → ok"; const b = `x µ ${1}`; const r = /µs/; // é';
  const out = asciiOnly(code);
  assert.doesNotMatch(out, /[^ -~]/);
  const values = new Function(`${out}\nreturn [a, b, r.test("2µs")];`)();
  assert.deepEqual(values, ["µs → ok", "x µ 1", true]);
});

Deno.test("asciiOnly refuses a String.raw template holding non-ASCII text", () => {
  assert.throws(
    () => asciiOnly("const p = String.raw`^(\\d+)(us|µs)$`;"),
    /String\.raw template holds non-ASCII text.*\(write it as a plain string\)/,
  );
  assert.equal(asciiOnly("String.raw`\\d+`"), "String.raw`\\d+`");
});
