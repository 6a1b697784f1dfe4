import assert from "node:assert/strict";
import { skip } from "../../tests/_skip.ts";
import { peerMissing } from "../../tests/peers/ensure_peer.ts";
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { RefusedContentError } from "./_safety.ts";
import { canonicalJson, type VerificationOptions, verifyBundle } from "./_signature.ts";
import type { TarEntry } from "./_tar.ts";
import { compactJson, opaSign, signFiles, signingKey } from "../../tests/sources/_bundles.ts";

// Needs a peer that `deno task peers` builds; tests never build one.
const ignore = skip(peerMissing("opa"));

const enc = (s: string) => new TextEncoder().encode(s);

async function dirEntries(dir: string, prefix = ""): Promise<TarEntry[]> {
  const out: TarEntry[] = [];
  for await (const e of Deno.readDir(join(dir, prefix))) {
    const path = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await dirEntries(dir, path));
    else out.push({ path, data: await Deno.readFile(join(dir, path)) });
  }
  return out;
}

async function refused(p: Promise<unknown>, pattern: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof RefusedContentError, String(e));
    assert.match(`${e.file ?? ""}: ${e.message}`, pattern);
    return true;
  });
}

Deno.test("canonical JSON is OPA's: sorted keys, compact, numbers as written", () => {
  assert.equal(
    canonicalJson('{ "b": [1.50, 2e3], "a": {"y": "\u2028<&>", "x": null} }'),
    '{"a":{"x":null,"y":"\\u2028<&>"},"b":[1.50,2e3]}',
  );
});

Deno.test("bundles signed by the real opa sign verify; tampering is refused", {
  ignore,
}, async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "camblet-sign-" });
  const b = join(dir, "bundle");
  const pair = (alg: "rsa") => generateKeyPairSync(alg, { modulusLength: 2048 });
  const { privateKey, publicKey } = pair("rsa");
  const publicPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  const options: VerificationOptions = { key: publicPem, algorithm: "RS256" };
  try {
    await Deno.mkdir(join(b, "policies"), { recursive: true });
    await Deno.mkdir(join(b, "services"));
    await Deno.writeTextFile(join(b, "policies/web.yaml"), "- certificate: {workloadID: web}\n");
    await Deno.writeTextFile(join(b, "services/db.yaml"), "[]\n");
    // Pretty-printed, with a number written as 1.50: OPA hashes its canonical form.
    await Deno.writeTextFile(join(b, "data.json"), '{\n  "max": 1.50,\n  "a": [1, 2]\n}\n');
    await Deno.writeTextFile(join(b, ".manifest"), '{"revision": "r7", "roots": [""]}');
    await opaSign(b, privateKey.export({ type: "pkcs8", format: "pem" }).toString());
    const entries = await dirEntries(b);
    const sig = entries.find((e) => e.path === ".signatures.json")!.data;

    await t.step("the untouched bundle verifies", async () => {
      await verifyBundle(sig, entries, options);
    });
    await t.step("a reformatted data.json still verifies (OPA hashes structure)", async () => {
      const same = entries.map((e) =>
        e.path === "data.json" ? { ...e, data: enc('{"a":[1,2],"max":1.50}') } : e
      );
      await verifyBundle(sig, same, options);
    });
    await t.step("a changed file is a digest mismatch", async () => {
      const tampered = entries.map((e) =>
        e.path === "policies/web.yaml"
          ? { ...e, data: enc("- certificate: {workloadID: root}\n") }
          : e
      );
      await refused(verifyBundle(sig, tampered, options), /^policies\/web.yaml: .*digest mismatch/);
      const number = entries.map((e) =>
        e.path === "data.json" ? { ...e, data: enc('{"a":[1,2],"max":1.5}') } : e
      );
      await refused(verifyBundle(sig, number, options), /^data.json: .*digest mismatch/);
    });
    await t.step("an added file and a removed file are refused", async () => {
      await refused(
        verifyBundle(sig, [...entries, { path: "policies/extra.yaml", data: enc("[]") }], options),
        /file policies\/extra.yaml is not included in the bundle signature/,
      );
      await refused(
        verifyBundle(sig, entries.filter((e) => e.path !== "services/db.yaml"), options),
        /services\/db.yaml signed but not found in the bundle/,
      );
    });
    await t.step("excluded files are not checked", async () => {
      await verifyBundle(sig, [...entries, { path: "README.md", data: enc("x") }], {
        ...options,
        exclude: ["*.md"],
      });
    });
    await t.step("another key does not verify it", async () => {
      const other = pair("rsa").publicKey.export({ type: "spki", format: "pem" }).toString();
      await refused(
        verifyBundle(sig, entries, { ...options, key: other }),
        /the JWS does not verify with the configured key/,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("jose-signed bundles: key id, scope, algorithms, one JWT", async (t) => {
  const es = await signingKey("ES256");
  const files = [
    { name: "policies/a.yaml", data: "[]\n" },
    { name: "data.json", data: compactJson({ b: 1, a: "x" }) },
  ];
  const entries = files.map((f) => ({ path: f.name, data: enc(f.data) }));
  const options: VerificationOptions = { key: es.publicPem, algorithm: "ES256", keyId: "k1" };
  await t.step("ES256 with the expected key id and scope", async () => {
    const sig = await signFiles(files, {
      privateKey: es.privateKey,
      alg: "ES256",
      kid: "k1",
      scope: "s",
    });
    await verifyBundle(enc(sig), entries, { ...options, scope: "s" });
    await refused(verifyBundle(enc(sig), entries, options), /scope "s" does not match ""/);
  });
  await t.step("another key id is refused", async () => {
    const sig = await signFiles(files, { privateKey: es.privateKey, alg: "ES256", kid: "k2" });
    await refused(verifyBundle(enc(sig), entries, options), /key id "k2", expected "k1"/);
  });
  await t.step("an algorithm other than the configured one is refused", async () => {
    const rs = await signingKey("RS256");
    const sig = await signFiles(files, { privateKey: rs.privateKey });
    await refused(verifyBundle(enc(sig), entries, options), /does not verify/);
  });
  await t.step("HS256 with a shared secret", async () => {
    const secret = "s3cret-s3cret-s3cret-s3cret-s3cret";
    const key = new TextEncoder().encode(secret) as unknown as CryptoKey;
    const sig = await signFiles(files, { privateKey: key, alg: "HS256" });
    await verifyBundle(enc(sig), entries, { key: secret, algorithm: "HS256" });
    await refused(
      verifyBundle(enc(sig), entries, {
        key: "wrong-secret-wrong-secret-wrong",
        algorithm: "HS256",
      }),
      /does not verify/,
    );
  });
  await t.step("zero or two JWTs, and garbage, are refused", async () => {
    await refused(verifyBundle(enc('{"signatures":[]}'), entries, options), /missing JWT/);
    await refused(verifyBundle(enc('{"signatures":["a","b"]}'), entries, options), /multiple JWTs/);
    await refused(verifyBundle(enc("not json"), entries, options), /is not JSON/);
    await refused(verifyBundle(enc('{"signatures":["x.y.z"]}'), entries, options), /JWS/);
  });
});
