import assert from "node:assert/strict";
import { formatRecord, redact } from "./log.ts";

Deno.test("secrets are redacted from log properties", () => {
  const r = redact({
    token: "s.abc",
    vaultToken: "x",
    privateKey: "PEM",
    kind: "ca",
    enabled: true,
  });
  assert.deepEqual(r, {
    token: "[REDACTED]",
    vaultToken: "[REDACTED]",
    privateKey: "[REDACTED]",
    kind: "ca",
    enabled: true,
  });
});

Deno.test("records format as logfmt", () => {
  const line = formatRecord({
    category: ["camblet", "daemon"],
    level: "info",
    message: ["Plugin loaded"],
    rawMessage: "Plugin loaded",
    timestamp: 0,
    properties: { kind: "ca", name: "self signed", token: "t" },
  });
  assert.equal(
    line,
    '1970-01-01T00:00:00.000Z INFO camblet.daemon "Plugin loaded" kind=ca name="self signed" token=[REDACTED]\n',
  );
});
