/**
 * Interop with hosts that run camblet-driver: openssl configured like the kernel module (BearSSL:
 * TLS 1.2 at most, its ECDHE-RSA suites, ALPN `camblet`, RSA keys with exponent 3) talks to our
 * proxy as a client and as a server. Needs root, libbpf1, cgroup v2; skipped otherwise.
 */
import assert from "node:assert/strict";
import { skip as skipped } from "../_skip.ts";
import {
  createHosts,
  defaultConfigs,
  destroyHosts,
  type Hosts,
  httpServer,
  IDS,
  startAgent,
} from "./_hosts.ts";
import { HOST_A, netnsSkipReason } from "./_netns.ts";

const skip = await netnsSkipReason();

/** camblet-driver's client suites (protocol doc §5), in OpenSSL names. */
const KERNEL_CLIENT_SUITES = [
  "ECDHE-RSA-CHACHA20-POLY1305",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "AES128-CCM",
].join(":");

const MARKER = `interop-marker-${crypto.randomUUID()}`;

Deno.test({
  name: "interop: a kernel-module-like peer handshakes with the proxy",
  ignore: skipped(skip),
  async fn(t) {
    let h: Hosts | undefined;
    try {
      h = await createHosts("i");
      const hosts = h;
      const www = `${h.pki.dir}/www`;
      await Deno.mkdir(www);
      await Deno.writeTextFile(`${www}/hello.txt`, `${MARKER}\n`);
      await httpServer(h, 8000, www);
      const cfg = defaultConfigs(h);
      h.agentA = await startAgent(h, h.pair.a, cfg.a, "agent-a");
      h.agentB = await startAgent(h, h.pair.b, cfg.b, "agent-b");

      await t.step(
        "kernel-like client (TLS 1.2, its suites, ALPN camblet) → our inbound",
        async () => {
          // From host a itself: sk_lookup steers local connections to port 8000 as well.
          for (const suite of KERNEL_CLIENT_SUITES.split(":").slice(0, 3)) {
            const p = hosts.pair.spawn(hosts.pair.a, [
              "openssl",
              "s_client",
              "-connect",
              `${HOST_A.ip4}:8000`,
              "-tls1_2",
              "-cipher",
              suite,
              "-alpn",
              "camblet",
              "-cert",
              hosts.client.certFile,
              "-key",
              hosts.client.keyFile,
              "-CAfile",
              hosts.client.caFile,
              "-verify_return_error",
              "-ign_eof",
            ], { stdin: true }); // deno-fmt-ignore
            await p.send("GET /hello.txt HTTP/1.0\r\nHost: a\r\n\r");
            const st = await p.finished();
            assert.equal(st.code, 0, p.stderr + p.stdout);
            assert.match(p.stdout, /Protocol\s*: TLSv1\.2/);
            assert.match(p.stdout, new RegExp(`Cipher\\s*: ${suite}`));
            assert.match(p.stdout, /ALPN protocol: camblet/);
            assert.match(p.stdout, /Verify return code: 0 \(ok\)/);
            assert.ok(p.stdout.includes(MARKER), "the application answered through the proxy");
          }
          assert.match(hosts.agentA!.stderr, new RegExp(`from ${IDS.client}.*protocol=TLSv1\\.2`));
        },
      );

      await t.step(
        "an ordinary TLS client offering other ALPN protocols still gets through",
        async () => {
          const p = hosts.pair.spawn(hosts.pair.a, [
            "openssl",
            "s_client",
            "-connect",
            `${HOST_A.ip4}:8000`,
            "-alpn",
            "h2,http/1.1",
            "-cert",
            hosts.client.certFile,
            "-key",
            hosts.client.keyFile,
            "-CAfile",
            hosts.client.caFile,
            "-ign_eof",
          ], { stdin: true }); // deno-fmt-ignore
          await p.send("GET /hello.txt HTTP/1.0\r\nHost: a\r\n\r");
          const st = await p.finished();
          assert.equal(st.code, 0, p.stderr + p.stdout);
          assert.match(p.stdout, /No ALPN negotiated/);
          assert.ok(p.stdout.includes(MARKER));
        },
      );

      await t.step("kernel-like client without a certificate is refused", async () => {
        const p = hosts.pair.spawn(hosts.pair.a, [
          "openssl",
          "s_client",
          "-connect",
          `${HOST_A.ip4}:8000`,
          "-tls1_2",
          "-cipher",
          KERNEL_CLIENT_SUITES,
          "-alpn",
          "camblet",
          "-CAfile",
          hosts.client.caFile,
        ], { stdin: true }); // deno-fmt-ignore
        await p.send("GET /hello.txt HTTP/1.0\r\n\r");
        await p.finished();
        assert.ok(!p.stdout.includes(MARKER));
        assert.match(
          hosts.agentA!.stderr,
          /Denied the client: peer sent no certificate|handshake with the client failed/,
        );
      });

      await t.step(
        "kernel-like server (TLS 1.2 only, requires client certs) ← our outbound",
        async () => {
          const server = await hosts.pki.issue(IDS.server, { exponent3: true });
          const s = hosts.pair.spawn(hosts.pair.a, [
            "openssl",
            "s_server",
            "-accept",
            "8443",
            "-tls1_2",
            "-cert",
            server.certFile,
            "-key",
            server.keyFile,
            "-CAfile",
            server.caFile,
            "-Verify",
            "1",
            "-verify_return_error",
            "-alpn",
            "camblet/passthrough,camblet",
            "-www",
          ]); // deno-fmt-ignore
          await s.waitFor(/ACCEPT/);
          const r = await hosts.pair.exec(hosts.pair.b, [
            "curl",
            "-sS",
            "-m",
            "10",
            `http://${HOST_A.ip4}:8443/`,
          ]);
          assert.equal(r.code, 0, r.stderr);
          assert.match(r.stdout, /Protocol\s*: TLSv1\.2/);
          assert.match(r.stdout, /Cipher\s*: ECDHE-RSA-/);
          assert.match(r.stdout, /no client certificate available|Client certificate/);
          assert.match(
            hosts.agentB!.stderr,
            new RegExp(`peerSpiffeId=${IDS.server}.*protocol=TLSv1\\.2 cipher=ECDHE-RSA-`),
          );
          assert.match(hosts.agentB!.stderr, /alpn=camblet/);
          await s.stop();
        },
      );
    } finally {
      await destroyHosts(h);
    }
  },
});
