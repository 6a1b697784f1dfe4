/**
 * The proxy data plane on two hosts of our own (network namespaces joined by a veth pair), with
 * unmodified applications: python3 -m http.server on host a, curl and python urllib on host b.
 * Needs root, libbpf1, cgroup v2, tcpdump; skipped with the reason otherwise.
 */
import assert from "node:assert/strict";
import { skip as skipped } from "../_skip.ts";
import {
  ask,
  capture,
  createHosts,
  defaultConfigs,
  destroyHosts,
  type Hosts,
  httpServer,
  IDS,
  startAgent,
} from "./_hosts.ts";
import { HOST_A, HOST_B, netnsSkipReason } from "./_netns.ts";
import { contains, notTlsRecords } from "./_pcap.ts";
import type { MetricsSnapshot } from "../../driver/proxy/metrics.ts";

const skip = await netnsSkipReason();

const MARKER = `camblet-marker-${crypto.randomUUID()}`;

function count(m: MetricsSnapshot, direction: string, outcome: string): number {
  return m.connections.filter((c) => c.direction === direction && c.outcome === outcome)
    .reduce((n, c) => n + c.count, 0);
}

async function curl(h: Hosts, url: string, extra: string[] = []) {
  return await h.pair.exec(h.pair.b, ["curl", "-sS", "-m", "10", ...extra, url]);
}

Deno.test({
  name: "proxy data plane: transparent mTLS between two network namespaces",
  ignore: skipped(skip),
  async fn(t) {
    let h: Hosts | undefined;
    try {
      h = await createHosts("p");
      const hosts = h;
      const www = `${h.pki.dir}/www`;
      await Deno.mkdir(www);
      await Deno.writeTextFile(`${www}/hello.txt`, `${MARKER}\n`);
      const app = await httpServer(h, 8000, www);
      await httpServer(h, 8001, www);
      await httpServer(h, 9000, www);
      const cfg = defaultConfigs(h);
      h.agentA = await startAgent(h, h.pair.a, cfg.a, "agent-a");
      h.agentB = await startAgent(h, h.pair.b, cfg.b, "agent-b");

      await t.step("curl gets the page over mTLS; only TLS records cross the wire", async () => {
        const cap = await capture(hosts, "tcp port 8000");
        const r = await curl(hosts, `http://${HOST_A.ip4}:8000/hello.txt`);
        const streams = await cap.stop();
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), MARKER);
        assert.equal(
          streams.length,
          2,
          `want one connection (2 directions), got ${streams.map((s) => s.key)}`,
        );
        for (const s of streams) {
          assert.equal(notTlsRecords(s.data), undefined, `${s.key} is not TLS only`);
          assert.ok(
            !contains(s.data, MARKER) && !contains(s.data, "GET /"),
            `${s.key} has plaintext`,
          );
        }
      });

      await t.step(
        "the server side logs the client's SPIFFE ID; the client side the server's",
        () => {
          assert.match(
            hosts.agentA!.stderr,
            new RegExp(`Accepted a protected connection from ${IDS.client}`),
          );
          assert.match(hosts.agentB!.stderr, new RegExp(`peerSpiffeId=${IDS.server}`));
          assert.match(hosts.agentB!.stderr, /"Connection protected" .*pid=\d+ uid=0 gid=0/);
        },
      );

      await t.step(
        "python urllib (a second client language) with unchanged getpeername",
        async () => {
          const code = `import socket, urllib.request
print(urllib.request.urlopen("http://${HOST_A.ip4}:8000/hello.txt", timeout=10).read().decode().strip())
s = socket.create_connection(("${HOST_A.ip4}", 8000), timeout=10)
print(s.getpeername()[0], s.getpeername()[1])
s.close()`;
          const r = await hosts.pair.exec(hosts.pair.b, ["python3", "-c", code]);
          assert.equal(r.code, 0, r.stderr);
          assert.deepEqual(r.stdout.trim().split("\n"), [MARKER, `${HOST_A.ip4} 8000`]);
        },
      );

      await t.step("a non-root client is attested by uid", async () => {
        const r = await hosts.pair.exec(hosts.pair.b, [
          "setpriv",
          "--reuid",
          "65534",
          "--regid",
          "65534",
          "--clear-groups",
          "curl",
          "-sS",
          "-m",
          "10",
          `http://${HOST_A.ip4}:8000/hello.txt`,
        ]); // deno-fmt-ignore
        assert.equal(r.stdout.trim(), MARKER, r.stderr);
        assert.match(hosts.agentB!.stderr, /"Connection protected" .*uid=65534 gid=65534/);
      });

      await t.step("IPv6", async () => {
        const r = await curl(hosts, `http://[${HOST_A.ip6}]:8000/hello.txt`, ["-g"]);
        assert.equal(r.stdout.trim(), MARKER, r.stderr);
        assert.match(hosts.agentA!.stderr, new RegExp(`source=\\[${HOST_B.ip6}\\]:\\d+`));
      });

      await t.step("an unprotected destination is untouched (plaintext on the wire)", async () => {
        const cap = await capture(hosts, "tcp port 9000");
        const r = await curl(hosts, `http://${HOST_A.ip4}:9000/hello.txt`);
        const streams = await cap.stop();
        assert.equal(r.stdout.trim(), MARKER, r.stderr);
        assert.ok(streams.some((s) => contains(s.data, "GET /hello.txt")));
        assert.ok(streams.some((s) => contains(s.data, MARKER)));
      });

      await t.step(
        "allowedSPIFFEIDs mismatch: the server side refuses and logs both IDs",
        async () => {
          const before = count(await ask(hosts.agentA!, "metrics"), "input", "denied");
          const r = await curl(hosts, `http://${HOST_A.ip4}:8001/hello.txt`);
          assert.notEqual(r.code, 0, "the refused request must fail");
          assert.ok(!r.stdout.includes(MARKER));
          const m = await ask<MetricsSnapshot>(hosts.agentA!, "metrics");
          assert.equal(count(m, "input", "denied"), before + 1);
          assert.match(
            hosts.agentA!.stderr,
            new RegExp(`Denied the client.*spiffeId=${IDS.server} peerSpiffeId=${IDS.client}`),
          );
          assert.ok(!app.stderr.includes("8001"), "nothing reached the application");
        },
      );

      await t.step(
        "passthrough: an application speaking TLS itself is not wrapped twice",
        async () => {
          const tlsApp = hosts.pair.spawn(hosts.pair.a, [
            "openssl",
            "s_server",
            "-accept",
            "8003",
            "-cert",
            hosts.server.certFile,
            "-key",
            hosts.server.keyFile,
            "-www",
          ]); // deno-fmt-ignore
          await tlsApp.waitFor(/ACCEPT/);
          const cap = await capture(hosts, "tcp port 8003");
          const r = await curl(hosts, "https://passthrough.test:8003/", [
            "-k",
            "--resolve",
            `passthrough.test:8003:${HOST_A.ip4}`,
          ]); // deno-fmt-ignore
          const streams = await cap.stop();
          assert.equal(r.code, 0, r.stderr);
          assert.match(
            r.stdout,
            /Protocol\s*: TLSv1\.3/,
            "curl and the application negotiated their own TLS",
          );
          // The application's ClientHello (SNI in clear) follows the agents' handshake unwrapped.
          assert.ok(
            streams.some((s) => contains(s.data, "passthrough.test")),
            "inner ClientHello on the wire",
          );
          assert.match(
            hosts.agentB!.stderr,
            /destination=10\.199\.0\.1:8003 .*protocol=TLSv1\.2 .*alpn=camblet\/passthrough/,
          );
          const m = await ask<MetricsSnapshot>(hosts.agentA!, "metrics");
          assert.equal(count(m, "input", "passthrough"), 1);
          await tlsApp.stop();
        },
      );

      await t.step(
        "half-close: the client shuts down writing and still reads the answer",
        async () => {
          const code = `import socket
s = socket.create_connection(("${HOST_A.ip4}", 8000), timeout=10)
s.sendall(b"GET /hello.txt HTTP/1.0\\r\\nHost: a\\r\\n\\r\\n")
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    c = s.recv(65536)
    if not c: break
    data += c
print(data.decode().split("\\r\\n\\r\\n", 1)[1].strip())`;
          const r = await hosts.pair.exec(hosts.pair.b, ["python3", "-c", code]);
          assert.equal(r.stdout.trim(), MARKER, r.stderr);
        },
      );

      await t.step("a reset by the client reaches the server application as a reset", async () => {
        const server = hosts.pair.spawn(hosts.pair.a, [
          "python3",
          "-u",
          "-c",
          `import socket
l = socket.create_server(("0.0.0.0", 8002))
print("listening", flush=True)
c, _ = l.accept()
try:
    while c.recv(65536):
        pass
    print("eof")
except ConnectionResetError:
    print("reset")`,
        ]);
        await server.waitFor(/listening/);
        const r = await hosts.pair.exec(hosts.pair.b, [
          "python3",
          "-c",
          `import socket, struct, time
s = socket.create_connection(("${HOST_A.ip4}", 8002), timeout=10)
s.sendall(b"hello")
time.sleep(0.5)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()`,
        ]);
        assert.equal(r.code, 0, r.stderr);
        await server.finished();
        assert.equal(server.stdout.trim().split("\n").pop(), "reset");
      });

      await t.step("many concurrent connections", async () => {
        const code = `import urllib.request, concurrent.futures
def get(i):
    for attempt in range(3):
        try:
            return urllib.request.urlopen("http://${HOST_A.ip4}:8000/hello.txt", timeout=20).read().decode().strip()
        except Exception as e:
            err = e
    return "error: %s" % err
with concurrent.futures.ThreadPoolExecutor(32) as ex:
    res = list(ex.map(get, range(200)))
print(sum(1 for r in res if r == "${MARKER}"), len(res))`;
        const before = await ask<MetricsSnapshot>(hosts.agentB!, "metrics");
        const fds = () =>
          [hosts.agentA!, hosts.agentB!].map((a) =>
            [...Deno.readDirSync(`/proc/${a.child.pid}/fd`)].length
          );
        const fdsBefore = fds();
        const r = await hosts.pair.exec(hosts.pair.b, ["python3", "-c", code], 120_000);
        assert.equal(r.stdout.trim(), "200 200", r.stderr);
        const after = await ask<MetricsSnapshot>(hosts.agentB!, "metrics");
        assert.ok(count(after, "output", "mtls") - count(before, "output", "mtls") >= 200);
        assert.equal(
          count(after, "output", "handshake_failed"),
          count(before, "output", "handshake_failed"),
        );
        // Every socket (and every fd the proxy duplicated) is closed again.
        for (let i = 0; i < 50 && fds().some((n, j) => n > fdsBefore[j]!); i++) {
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.deepEqual(fds(), fdsBefore);
      });

      await t.step("agent restart: connections work again", async () => {
        await hosts.agentA!.stop();
        hosts.agentA = await startAgent(hosts, hosts.pair.a, cfg.a, "agent-a2");
        const r = await curl(hosts, `http://${HOST_A.ip4}:8000/hello.txt`);
        assert.equal(r.stdout.trim(), MARKER, r.stderr);
      });

      await t.step(
        "agents stopped: the programs are detached and traffic flows directly",
        async () => {
          await hosts.agentA!.stop();
          await hosts.agentB!.stop();
          assert.match(hosts.agentA!.stderr, /Proxy data plane stopped/);
          const cap = await capture(hosts, "tcp port 8000");
          const r = await curl(hosts, `http://${HOST_A.ip4}:8000/hello.txt`);
          const streams = await cap.stop();
          assert.equal(r.stdout.trim(), MARKER, r.stderr);
          assert.ok(
            streams.some((s) => contains(s.data, MARKER)),
            "plaintext after the agents stopped",
          );
        },
      );
    } finally {
      await destroyHosts(h);
    }
  },
});
