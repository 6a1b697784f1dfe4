import assert from "node:assert/strict";
import { canonicalJson, contentId } from "./content_id.ts";

Deno.test("canonicalJson sorts keys at every level, keeps array order", () => {
  assert.equal(
    canonicalJson({ b: [{ y: 1, x: 2 }, 3], a: { d: null, c: "s" } }),
    '{"a":{"c":"s","d":null},"b":[{"x":2,"y":1},3]}',
  );
  assert.equal(canonicalJson({ b: 1, a: 2 }), canonicalJson({ a: 2, b: 1 }));
});

Deno.test("contentId", async (t) => {
  await t.step("is a version-8 RFC 9562 UUID", () => {
    assert.match(
      contentId("x"),
      /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });
  await t.step("depends only on the parts", () => {
    assert.equal(contentId("policy", "{}"), contentId("policy", "{}"));
    assert.notEqual(contentId("policy", "{}"), contentId("egress", "{}"));
    // Parts are length-prefixed, so moving a boundary changes the id.
    assert.notEqual(contentId("ab", "c"), contentId("a", "bc"));
  });
  await t.step("is the SHA-256 prefix of the length-prefixed parts", async () => {
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode("3:abc")),
    );
    const hex = [...digest.slice(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
    const id = contentId("abc").replaceAll("-", "");
    // Equal except the version nibble and the variant bits.
    assert.equal(id.slice(0, 12), hex.slice(0, 12));
    assert.equal(id.slice(13, 16), hex.slice(13, 16));
    assert.equal(id.slice(17), hex.slice(17));
  });
});
