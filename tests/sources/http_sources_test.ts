/**
 * Acceptance: an `http` source against a real loopback bundle server. After every kind of failure
 * (ETag 304, 500, slow, garbage, truncated, unsigned, wrongly signed, tampered, traversal,
 * decompression bomb, invalid content) the last good set is still what the agent serves, and the
 * status and metrics say why.
 */
import assert from "node:assert/strict";
import { type PolicySnapshot, PolicySources } from "../../agent/sources/policy_sources.ts";
import { sourcesMetrics } from "../../agent/sources/status.ts";
import { gzip, makeBundle, makeTarGz, namedPolicy, signedFleet, signingKey } from "./_bundles.ts";
import { BundleServer } from "./_bundle_server.ts";
import { specsFor } from "./_specs.ts";

const policy = namedPolicy;

Deno.test("http source: the last good set survives every failure", async (t) => {
  const server = BundleServer.start();
  const key = await signingKey();
  const sign = { privateKey: key.privateKey };
  const good = signedFleet(sign);
  server.serve = { kind: "bundle", body: await good("r1", ["web"]) };
  const sources = await PolicySources.start({
    specs: specsFor([{
      type: "http",
      name: "hub",
      url: server.url(),
      timeout: "300ms",
      verification: { key: key.publicPem },
    }]),
    trustDomain: "acme.test",
  });
  const first = sources.current;
  const unchangedSet = (why: RegExp, state: string) => {
    const s = sources.current;
    assert.equal(s.revision, 1);
    assert.deepEqual(s.payloads, first.payloads, "the last good payloads are served");
    assert.deepEqual(s.sources, { "http(hub)": "r1" });
    const st = sources.status().sources[0]!;
    assert.equal(st.state, state);
    assert.equal(st.revision, "r1");
    assert.match(st.lastError?.problems.join("\n") ?? "", why);
    assert.match(
      sourcesMetrics(sources.status()),
      /camblet_policy_source_up\{source="http\(hub\)",type="http"\} 0/,
    );
  };
  try {
    await t.step("the first bundle is in force", () => {
      assert.equal(first.revision, 1);
      assert.deepEqual(first.payloads.load_policies.policies.map((p) => p.certificate.workloadID), [
        "web",
      ]);
      assert.deepEqual(Object.keys(first.payloads.load_sd_info), ["10.0.0.7:443"]);
      assert.equal(
        first.provenance[first.payloads.load_policies.policies[0]!.id]?.file,
        "policies/web.yaml",
      );
      assert.match(
        sourcesMetrics(sources.status()),
        /camblet_policy_source_revision_info\{source="http\(hub\)",revision="r1"\} 1/,
      );
    });

    await t.step("ETag: 304 Not Modified keeps it, and counts as a success", async () => {
      const before = server.seen.length;
      await sources.refresh();
      assert.equal(server.seen[before]?.status, 304);
      assert.equal(sources.current.revision, 1);
      const st = sources.status().sources[0]!;
      assert.equal(st.state, "ok");
      assert.equal(st.checks["unchanged"], 1);
    });

    const failures: [string, () => void | Promise<void>, RegExp, string][] = [
      [
        "500",
        () => {
          server.serve = { kind: "status", status: 500, body: "db down" };
        },
        /http\(hub\): GET .*: 500 Internal Server Error: db down/,
        "failing",
      ],
      [
        "slow",
        () => {
          server.serve = { kind: "slow", delayMs: 3000, body: new Uint8Array() };
        },
        /no answer within 300 ms/,
        "failing",
      ],
      [
        "garbage",
        () => {
          server.serve = {
            kind: "bundle",
            body: new Uint8Array([0x1f, 0x8b, ...crypto.getRandomValues(new Uint8Array(300))]),
          };
        },
        /truncated or corrupt/,
        "failing",
      ],
      [
        "truncated",
        async () => {
          const b = await good("r9", ["web", "x"]);
          server.serve = { kind: "bundle", body: b.subarray(0, b.length >> 1) };
        },
        /truncated or corrupt/,
        "failing",
      ],
      [
        "unsigned",
        async () => {
          server.serve = {
            kind: "bundle",
            body: await makeBundle({ revision: "r9", files: { "policies/x.yaml": policy("x") } }),
          };
        },
        /not signed/,
        "failing",
      ],
      [
        "wrongly signed",
        async () => {
          const other = await signingKey();
          server.serve = {
            kind: "bundle",
            body: await makeBundle({
              revision: "r9",
              files: { "policies/x.yaml": policy("x") },
              sign: { privateKey: other.privateKey },
            }),
          };
        },
        /does not verify with the configured key/,
        "failing",
      ],
      [
        "tampered",
        async () => {
          server.serve = {
            kind: "bundle",
            body: await makeBundle({
              revision: "r9",
              files: { "policies/x.yaml": policy("x") },
              sign,
              after: { "policies/x.yaml": policy("root") },
            }),
          };
        },
        /http\(hub\): policies\/x.yaml: bundle signature: digest mismatch/,
        "failing",
      ],
      [
        "traversal",
        async () => {
          server.serve = {
            kind: "bundle",
            body: await makeTarGz([{ name: "policies/../../../x.yaml", data: "x" }]),
          };
        },
        /climbs out of the source/,
        "failing",
      ],
      [
        "decompression bomb",
        async () => {
          server.serve = { kind: "bundle", body: await gzip(new Uint8Array(80 << 20)) };
        },
        /larger than the limit of 64 MiB/,
        "failing",
      ],
      [
        "invalid content (signed, but not a policy)",
        async () => {
          server.serve = {
            kind: "bundle",
            body: await makeBundle({
              revision: "r9",
              files: { "policies/x.yaml": "- selectors: nope\n" },
              sign,
            }),
          };
        },
        /http\(hub\): policies\/x.yaml:1: item 0: selectors: /,
        "rejected",
      ],
    ];
    for (const [name, setup, why, state] of failures) {
      await t.step(`${name}: the last good set is still served`, async () => {
        await setup();
        await sources.refresh();
        unchangedSet(why, state);
      });
    }

    await t.step("a good bundle after all that is applied", async () => {
      server.serve = { kind: "bundle", body: await good("r2", ["web", "api"]) };
      const s = await sources.refresh();
      assert.equal(s.revision, 2);
      assert.deepEqual(
        s.payloads.load_policies.policies.map((p) => p.certificate.workloadID).sort(),
        ["api", "web"],
      );
      const st = sources.status().sources[0]!;
      assert.equal(st.state, "ok");
      assert.equal(st.consecutiveFailures, 0);
      assert.ok(st.lastError, "the last error stays visible");
    });
  } finally {
    await sources.dispose();
    await server.close();
  }
});

Deno.test("http source: polling recovers by itself after the server fails", async () => {
  const server = BundleServer.start();
  server.serve = {
    kind: "bundle",
    body: await makeBundle({ revision: "a", files: { "policies/a.yaml": policy("a") } }),
  };
  const sources = await PolicySources.start({
    specs: specsFor([{
      type: "http",
      url: server.url(),
      pollInterval: "100ms",
      retryMin: "20ms",
      jitter: 0,
    }]),
    trustDomain: "acme.test",
    debounceMs: 10,
  });
  try {
    server.serve = { kind: "status", status: 503, body: "maintenance" };
    await new Promise((r) => setTimeout(r, 400));
    const failing = sources.status().sources[0]!;
    assert.equal(failing.state, "failing");
    assert.ok(failing.consecutiveFailures >= 2, `backoff retries: ${failing.consecutiveFailures}`);
    const next = new Promise<PolicySnapshot>((resolve) => {
      const off = sources.subscribe((s) => (off(), resolve(s)));
    });
    server.serve = {
      kind: "bundle",
      body: await makeBundle({ revision: "b", files: { "policies/b.yaml": policy("b") } }),
    };
    const s = await next;
    assert.deepEqual(s.sources, { "http(0)": "b" });
    assert.equal(sources.status().sources[0]!.state, "ok");
  } finally {
    await sources.dispose();
    await server.close();
  }
});
