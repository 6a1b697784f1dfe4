/**
 * Vault secrets read from files (the token, AppRole role_id and secret_id) are checked: a file
 * that group or others can read gets a warning naming it, never the secret. The service-account
 * token (Kubernetes projects it 0644) is exempt.
 */
import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { login, staticToken } from "./auth.ts";
import type { VaultAuthConfig } from "./config.ts";
import { VaultClient } from "./vault_client.ts";

Deno.test("vault secret files readable by others are warned about", async () => {
  const lines: string[] = [];
  await configure({
    reset: true,
    sinks: { mem: (r: LogRecord) => lines.push(`${r.level} ${r.message.join("")}`) },
    loggers: [
      { category: ["camblet"], lowestLevel: "debug", sinks: ["mem"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["mem"] },
    ],
  });
  const dir = await Deno.makeTempDir({ prefix: "camblet-vault-secrets-" });
  const file = async (name: string, text: string, mode: number) => {
    await Deno.writeTextFile(`${dir}/${name}`, text);
    await Deno.chmod(`${dir}/${name}`, mode);
    return `${dir}/${name}`;
  };
  // Nothing listens there: login reads the secrets, then fails to connect.
  const client = new VaultClient({ address: "http://127.0.0.1:9" });
  try {
    const base = { mount: "x", jwtFile: await file("jwt", "header.payload.sig", 0o644) };
    const tokenFile = await file("token", "hvs.s3cret-token\n", 0o600);
    const auth = { ...base, method: "token", tokenFile } as VaultAuthConfig;
    assert.equal(await staticToken(auth), "hvs.s3cret-token");
    assert.deepEqual(lines, [], "a 0600 token file is fine");
    await Deno.chmod(tokenFile, 0o644);
    await staticToken(auth);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^warning Vault token file ".*\/token" is readable by group or others/);

    const approle = {
      ...base,
      method: "approle",
      roleIdFile: await file("role-id", "role-1234", 0o600),
      secretIdFile: await file("secret-id", "secret-5678", 0o640),
    } as VaultAuthConfig;
    const o = { signal: AbortSignal.timeout(5000), timeoutMs: 2000 };
    await assert.rejects(() => login(client, approle, o));
    assert.equal(lines.length, 2, lines.join("\n"));
    assert.match(lines[1]!, /AppRole secret_id file ".*\/secret-id" is readable by group/);

    const k8s = { ...base, method: "kubernetes", role: "camblet" } as VaultAuthConfig;
    await assert.rejects(() => login(client, k8s, o));
    assert.equal(lines.length, 2, "the projected service-account token is not warned about");
    assert.doesNotMatch(lines.join("\n"), /s3cret|5678|1234/);
  } finally {
    client.close?.();
    await reset();
    await Deno.remove(dir, { recursive: true });
  }
});
