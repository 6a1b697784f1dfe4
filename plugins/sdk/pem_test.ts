import assert from "node:assert/strict";
import { encodePem, fromBase64, parsePem, toBase64 } from "./pem.ts";

Deno.test("PEM", async (t) => {
  await t.step("reads Go-style headers, CRLF and text between blocks", () => {
    const der = new Uint8Array([48, 3, 2, 1, 0]);
    const b64 = toBase64(der);
    const text =
      `junk\r\n-----BEGIN CERTIFICATE-----\r\nSubject: CN=x\r\nType: ROOT CA\r\n\r\n${b64}\r\n-----END CERTIFICATE-----\r\nmore\n` +
      encodePem("PRIVATE KEY", der);
    const blocks = parsePem(text);
    assert.deepEqual(blocks.map((b) => b.label), ["CERTIFICATE", "PRIVATE KEY"]);
    assert.deepEqual(blocks[0]!.headers, { Subject: "CN=x", Type: "ROOT CA" });
    assert.deepEqual(blocks[0]!.der, der);
  });

  await t.step("writes 64-column RFC 7468 PEM", () => {
    const pem = encodePem("CERTIFICATE", new Uint8Array(100).fill(7));
    const lines = pem.trimEnd().split("\n");
    assert.equal(lines[1]!.length, 64);
    assert.equal(lines.at(-1), "-----END CERTIFICATE-----");
  });

  await t.step("strict base64 and unterminated blocks", () => {
    assert.throws(() => fromBase64("AQ"), SyntaxError);
    assert.throws(() => fromBase64("AQ=\n="), SyntaxError);
    assert.deepEqual(fromBase64("AQAB"), new Uint8Array([1, 0, 1]));
    assert.throws(() => parsePem("-----BEGIN X-----\nAAAA\n"), /no END line/);
    assert.throws(() => parsePem("-----BEGIN X-----\n!!!!\n-----END X-----\n"), /bad base64/);
  });
});
