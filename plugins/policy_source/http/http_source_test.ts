import assert from "node:assert/strict";
import { httpPolicySource, type HttpSource, parseHttpSourceConfig } from "./http_source.ts";
import type { SourceCheck } from "../types.ts";
import { policySourceConformance } from "../conformance.ts";
import { getLogger } from "@logtape/logtape";
import { systemClock } from "../../types.ts";
import { gzip, makeBundle, makeTarGz, signingKey } from "../../../tests/sources/_bundles.ts";
import { BundleServer, makeTlsCerts } from "../../../tests/sources/_bundle_server.ts";

const WEB = "- selectors: [{process:name: web}]\n  certificate: {workloadID: web}\n";

async function source(raw: Record<string, unknown>): Promise<HttpSource> {
  const parsed = parseHttpSourceConfig(raw);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return await httpPolicySource.create(parsed.value, {
    log: getLogger(["camblet", "test"]),
    clock: systemClock,
    trustDomain: "acme.test",
    signal: new AbortController().signal,
  });
}

function failure(r: SourceCheck): string {
  assert.equal(r.kind, "failure", JSON.stringify(r));
  return r.kind === "failure"
    ? r.problems.map((p) => `${p.file ?? ""}: ${p.message}`).join("\n")
    : "";
}

Deno.test("http source against a loopback bundle server", async (t) => {
  const server = BundleServer.start();
  const key = await signingKey();
  const sign = { privateKey: key.privateKey };
  const s = await source({
    url: server.url(),
    timeout: "300ms",
    verification: { key: key.publicPem },
  });
  try {
    await t.step("a signed bundle is delivered; then 304 Not Modified is unchanged", async () => {
      server.serve = {
        kind: "bundle",
        body: await makeBundle({
          revision: "r1",
          files: {
            "policies/web.yaml": WEB,
            "services/db.yaml": "[]\n",
            "policies/rego/x.rego": "package x\n",
          },
          sign,
        }),
      };
      const r = await s.check();
      assert.ok(r.kind === "delivery", JSON.stringify(r));
      assert.equal(r.delivery.revision, "r1");
      assert.deepEqual(r.delivery.files.map((f) => [f.kind, f.path]), [
        ["policies", "policies/web.yaml"],
        ["services", "services/db.yaml"],
      ]);
      assert.deepEqual(await s.check(), { kind: "unchanged", revision: "r1" });
      const last = server.seen.at(-1)!;
      assert.equal(last.status, 304);
      assert.match(last.ifNoneMatch ?? "", /^"[0-9a-f]{16}"$/);
    });

    const cases: [string, () => void | Promise<void>, RegExp][] = [
      ["500", () => {
        server.serve = { kind: "status", status: 500, body: "boom" };
      }, /GET http:\/\/127.0.0.1:\d+\/bundles\/camblet.tar.gz: 500 Internal Server Error: boom/],
      ["slow", () => {
        server.serve = { kind: "slow", delayMs: 5000, body: new Uint8Array() };
      }, /no answer within 300 ms/],
      ["garbage", async () => {
        server.serve = { kind: "bundle", body: await gzip(new TextEncoder().encode("<html>oops")) };
      }, /not a tar archive/],
      ["truncated", async () => {
        const whole = await makeBundle({
          revision: "r9",
          files: { "policies/web.yaml": WEB.repeat(200) },
          sign,
        });
        server.serve = { kind: "bundle", body: whole.subarray(0, whole.length - 40) };
      }, /cannot unpack the gzip archive \(truncated or corrupt\)/],
      ["unsigned", async () => {
        server.serve = {
          kind: "bundle",
          body: await makeBundle({ revision: "r9", files: { "policies/web.yaml": WEB } }),
        };
      }, /the bundle is not signed \(no .signatures.json\) and a verification key is configured/],
      ["wrongly signed", async () => {
        const other = await signingKey();
        server.serve = {
          kind: "bundle",
          body: await makeBundle({
            revision: "r9",
            files: { "policies/web.yaml": WEB },
            sign: { privateKey: other.privateKey },
          }),
        };
      }, /does not verify with the configured key/],
      ["tampered", async () => {
        server.serve = {
          kind: "bundle",
          body: await makeBundle({
            revision: "r9",
            files: { "policies/web.yaml": WEB },
            sign,
            after: { "policies/web.yaml": WEB.replace("web", "root") },
          }),
        };
      }, /^policies\/web.yaml: bundle signature: digest mismatch/],
      ["traversal", async () => {
        server.serve = {
          kind: "bundle",
          body: await makeTarGz([{ name: "../../etc/cron.d/x", data: "x" }]),
        };
      }, /climbs out of the source/],
      ["decompression bomb", async () => {
        server.serve = { kind: "bundle", body: await gzip(new Uint8Array(80 << 20)) };
      }, /the unpacked archive is larger than the limit of 64 MiB/],
    ];
    for (const [name, setup, why] of cases) {
      await t.step(`${name} is a failure with its reason`, async () => {
        await setup();
        assert.match(failure(await s.check()), why);
      });
    }

    await t.step("a new revision after the failures is delivered", async () => {
      server.serve = {
        kind: "bundle",
        body: await makeBundle({ revision: "r2", files: { "policies/web.yaml": WEB }, sign }),
      };
      const r = await s.check();
      assert.ok(r.kind === "delivery" && r.delivery.revision === "r2");
    });
  } finally {
    await s.dispose();
    await server.close();
  }
});

Deno.test("http source: token, plain YAML, size limit, custom CA", async (t) => {
  const server = BundleServer.start();
  try {
    await t.step("a bearer token is sent; without it the server's 401 is the reason", async () => {
      server.token = "t0k3n";
      server.serve = {
        kind: "bundle",
        body: new TextEncoder().encode(WEB),
        contentType: "text/yaml",
      };
      const withToken = await source({ url: server.url("/web.yaml"), token: "t0k3n" });
      const r = await withToken.check();
      assert.ok(r.kind === "delivery", JSON.stringify(r));
      assert.deepEqual(r.delivery.files, [{ kind: "policies", path: "web.yaml", text: WEB }]);
      assert.match(r.delivery.revision, /^"[0-9a-f]{16}"$/, "the ETag");
      const without = await source({ url: server.url("/web.yaml") });
      assert.match(failure(await without.check()), /401 Unauthorized: unauthorized/);
      for (const x of [withToken, without]) await x.dispose();
      server.token = undefined;
    });
    await t.step("a download above the limit is refused", async () => {
      server.serve = { kind: "bundle", body: new Uint8Array(5000) };
      const small = await source({ url: server.url(), limits: { maxDownloadBytes: 1000 } });
      assert.match(
        failure(await small.check()),
        /the download \(4.9 KiB\) is larger than the limit of 1000 bytes/,
      );
      await small.dispose();
    });
    await t.step("a server without ETag: same bytes are unchanged", async () => {
      server.serve = {
        kind: "bundle",
        body: await makeBundle({ files: { "services/a.yaml": "[]" } }),
        etag: false,
      };
      const s = await source({ url: server.url() });
      const r = await s.check();
      assert.ok(r.kind === "delivery");
      assert.match(r.delivery.revision, /^sha256:[0-9a-f]{16}$/);
      assert.deepEqual(await s.check(), { kind: "unchanged", revision: r.delivery.revision });
      await s.dispose();
    });
  } finally {
    await server.close();
  }
  await t.step("https with a custom CA", async () => {
    const dir = await Deno.makeTempDir();
    const tls = await makeTlsCerts(dir);
    const https = await BundleServer.startTls(tls.cert, tls.key);
    try {
      https.serve = {
        kind: "bundle",
        body: await makeBundle({ revision: "tls", files: { "policies/a.yaml": "[]" } }),
      };
      const trusted = await source({ url: https.url(), caFile: tls.caFile });
      const r = await trusted.check();
      assert.ok(r.kind === "delivery" && r.delivery.revision === "tls", JSON.stringify(r));
      const untrusted = await source({ url: https.url(), timeout: "5s" });
      assert.match(failure(await untrusted.check()), /certificate|UnknownIssuer|invalid peer/i);
      for (const x of [trusted, untrusted]) await x.dispose();
    } finally {
      await https.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("http source config", () => {
  const r = parseHttpSourceConfig({
    url: "ftp://x",
    verification: { algorithm: "none" },
    format: "zip",
  });
  assert.ok(!r.ok);
  assert.deepEqual(r.problems.map((p) => p.field).sort(), [
    "format",
    "url",
    "verification.algorithm",
  ]);
});

Deno.test("http source conformance", async (t) => {
  const server = BundleServer.start();
  let n = 0;
  await policySourceConformance(t, async (initial) => {
    const publish = async (content: Record<string, string | Uint8Array>) => {
      server.serve = {
        kind: "bundle",
        body: await makeBundle({ revision: `c${++n}`, files: content }),
      };
    };
    await publish(initial);
    return {
      source: await source({ url: server.url(), pollInterval: "100ms", jitter: 0 }),
      publish,
      cleanup: () => server.close(),
    };
  });
});

Deno.test("http source: secrets in the URL's query never show in location or problems", async () => {
  const server = BundleServer.start();
  const url = `${server.url("/bundles/camblet.tar.gz")}?token=s3cr3t-value&sig=abc%2Fdef`;
  const s = await source({ url, timeout: "300ms" });
  const gone = await source({
    url: "http://127.0.0.1:9/x.tar.gz?token=s3cr3t-value",
    timeout: "300ms",
  });
  try {
    assert.equal(
      s.location,
      `${server.url("/bundles/camblet.tar.gz")}?token=REDACTED&sig=REDACTED`,
    );
    server.serve = { kind: "status", status: 500, body: "boom" };
    const text = failure(await s.check());
    assert.match(text, /500 Internal Server Error/);
    assert.doesNotMatch(text, /s3cr3t|abc/);
    const refused = failure(await gone.check());
    assert.match(refused, /127\.0\.0\.1:9/);
    assert.doesNotMatch(refused, /s3cr3t/);
    assert.doesNotMatch(gone.location, /s3cr3t/);
  } finally {
    await s.dispose();
    await gone.dispose();
    await server.close();
  }
});

Deno.test("http source: a token file others can read is warned about, once", async () => {
  const { configure, reset } = await import("@logtape/logtape");
  const lines: string[] = [];
  await configure({
    reset: true,
    sinks: { mem: (r) => lines.push(`${r.level} ${r.message.join("")}`) },
    loggers: [
      { category: ["camblet"], lowestLevel: "debug", sinks: ["mem"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["mem"] },
    ],
  });
  const server = BundleServer.start();
  const dir = await Deno.makeTempDir({ prefix: "camblet-http-token-" });
  const tokenFile = `${dir}/token`;
  await Deno.writeTextFile(tokenFile, "bearer-s3cret\n");
  await Deno.chmod(tokenFile, 0o644);
  server.serve = { kind: "status", status: 404, body: "nothing" };
  const s = await source({ url: server.url(), tokenFile, timeout: "300ms" });
  try {
    await s.check();
    await s.check();
    const warned = lines.filter((l) => l.startsWith("warning"));
    assert.equal(warned.length, 1, lines.join("\n"));
    assert.match(warned[0]!, /token file ".*\/token" is readable by group or others \(mode 0644\)/);
    assert.doesNotMatch(lines.join("\n"), /bearer-s3cret/);
  } finally {
    await s.dispose();
    await server.close();
    await reset();
    await Deno.remove(dir, { recursive: true });
  }
});
