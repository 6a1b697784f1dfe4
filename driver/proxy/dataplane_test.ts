/**
 * The proxy's outbound path on loopback, without root: steering is off and the original
 * destination comes from an `OriginLookup` the test controls. Peers are real TLS servers with
 * real RSA certificates (openssl). The namespace tests in tests/dataplane/ cover the rest.
 */
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { type TestIdentity, TestPki } from "../../tests/dataplane/_pki.ts";
import { startProxyDataPlane } from "./dataplane.ts";
import type { ConnectionEvent, ProxyConnection, ProxyDecision } from "./types.ts";

const CLIENT = "spiffe://loop.test/client";
const SERVER = "spiffe://loop.test/server";

/** A TLS peer (like the far agent) that answers `peer:<client SPIFFE ID>:<request>`. */
async function tlsPeer(id: TestIdentity, opts: { maxVersion?: tls.SecureVersion } = {}) {
  const seen: string[] = [];
  const srv = tls.createServer({
    key: id.keyPem,
    cert: id.certPem,
    ca: id.bundlePem,
    requestCert: true,
    rejectUnauthorized: false,
    ALPNProtocols: ["camblet"],
    ...(opts.maxVersion ? { maxVersion: opts.maxVersion } : {}),
  }, (s) => {
    s.on("error", () => {});
    const who = s.authorized ? s.getPeerCertificate().subjectaltname : "anonymous";
    s.once("data", (d) => {
      seen.push(String(d));
      s.end(`peer:${who}:${d}:${s.getProtocol()}:${s.alpnProtocol}`);
    });
  });
  srv.on("tlsClientError", () => {});
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    seen,
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

/** Connects to the proxy's outbound listener, sends `msg`, returns what came back. */
function request(port: number, msg: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port }, () => s.write(msg));
    let out = "";
    s.on("data", (d) => out += String(d));
    s.on("close", () => resolve(out));
    s.on("error", () => {});
  });
}

Deno.test("proxy outbound on loopback: policy, mTLS, peer checks, failures stay per connection", async (t) => {
  const pki = await TestPki.create();
  const otherPki = await TestPki.create("another root");
  const client = await pki.issue(CLIENT);
  const server = await pki.issue(SERVER);
  const impostor = await otherPki.issue(SERVER);
  const peer = await tlsPeer(server);
  const peer12 = await tlsPeer(server, { maxVersion: "TLSv1.2" });
  const fake = await tlsPeer(impostor);
  const plainEcho = net.createServer((s) => s.on("data", (d) => s.end(`plain:${d}`)));
  await new Promise<void>((r) => plainEcho.listen(0, "127.0.0.1", r));
  const plainPort = (plainEcho.address() as net.AddressInfo).port;

  let dest: { port: number } | undefined = { port: peer.port };
  let decision: ProxyDecision | Error = { intercepted: false, mtls: false, allowedSPIFFEIDs: [] };
  const seen: ProxyConnection[] = [];
  const events: ConnectionEvent[] = [];
  const dp = await startProxyDataPlane({
    onConnection: (e) => events.push(e),
    outboundPort: 0,
    inboundPort: 0,
    listenIp6: null,
    steering: false,
    origin: {
      originalDestination: () =>
        dest ? { ip: "127.0.0.1", port: dest.port, pid: 1234, uid: 1000, gid: 100 } : undefined,
    },
    identity: {
      certificateFor(id) {
        if (id !== CLIENT) throw new Error(`no certificate for ${id}`);
        return client;
      },
    },
    policy(conn) {
      seen.push(conn);
      if (decision instanceof Error) throw decision;
      return decision;
    },
  });
  const mtls = (allowed: string[], spiffeId = CLIENT): ProxyDecision => ({
    intercepted: true,
    mtls: true,
    allowedSPIFFEIDs: allowed,
    spiffeId,
    policy: { id: "p" },
  });
  const outcomes = () => {
    const o: Record<string, number> = {};
    for (const c of dp.metrics().connections) o[c.outcome] = (o[c.outcome] ?? 0) + c.count;
    return o;
  };
  try {
    await t.step("no policy match: bytes pass unchanged", async () => {
      dest = { port: plainPort };
      assert.equal(await request(dp.outboundPort, "hi"), "plain:hi");
      assert.deepEqual(
        { ...seen.at(-1)!, sourcePort: 0 },
        {
          direction: "output",
          sourceIp: "127.0.0.1",
          sourcePort: 0,
          destinationIp: "127.0.0.1",
          destinationPort: plainPort,
          process: { pid: 1234, uid: 1000, gid: 100 },
        },
      );
    });

    await t.step("mTLS with our certificate to an allowed peer", async () => {
      dest = { port: peer.port };
      decision = mtls(["spiffe://loop.test"]);
      assert.equal(await request(dp.outboundPort, "GET"), `peer:URI:${CLIENT}:GET:TLSv1.3:camblet`);
      const e = events.at(-1)!;
      assert.equal(e.outcome, "mtls");
      assert.equal(e.peerSpiffeId, SERVER);
      assert.equal(e.decision?.spiffeId, CLIENT);
      assert.equal(e.connection, seen.at(-1), "the connection the policy was asked about");
    });

    await t.step("a TLS 1.2-only peer gets an ECDHE-RSA suite", async () => {
      dest = { port: peer12.port };
      assert.equal(await request(dp.outboundPort, "v12"), `peer:URI:${CLIENT}:v12:TLSv1.2:camblet`);
    });

    await t.step("peer outside allowedSPIFFEIDs: refused before any byte is sent", async () => {
      dest = { port: peer.port };
      decision = mtls(["spiffe://loop.test/someone-else"]);
      const before = peer.seen.length;
      assert.equal(await request(dp.outboundPort, "secret"), "");
      assert.equal(peer.seen.length, before);
      assert.equal(outcomes().denied, 1);
      const e = events.at(-1)!;
      assert.equal(e.outcome, "denied");
      assert.equal(e.peerSpiffeId, SERVER);
      assert.match(e.reason ?? "", /someone-else|not allowed|allowed/);
    });

    await t.step("peer certificate from another CA: refused", async () => {
      dest = { port: fake.port };
      decision = mtls([]);
      assert.equal(await request(dp.outboundPort, "secret"), "");
      assert.equal(fake.seen.length, 0);
      assert.equal(outcomes().denied, 2);
    });

    await t.step("mtls DISABLE: TLS without a client certificate", async () => {
      dest = { port: peer.port };
      decision = { intercepted: true, mtls: false, allowedSPIFFEIDs: [], policy: { id: "p" } };
      assert.equal(await request(dp.outboundPort, "anon"), "peer:anonymous:anon:TLSv1.3:camblet");
    });

    await t.step("failures stay with their connection", async () => {
      decision = new Error("policy engine down");
      assert.equal(await request(dp.outboundPort, "x"), "");
      decision = mtls([], "spiffe://loop.test/no-cert");
      assert.equal(await request(dp.outboundPort, "x"), "");
      dest = undefined;
      assert.equal(await request(dp.outboundPort, "x"), "");
      dest = { port: 1 }; // nothing listens
      decision = mtls([]);
      assert.equal(await request(dp.outboundPort, "x"), "");
      dest = { port: peer.port };
      assert.equal(await request(dp.outboundPort, "ok"), `peer:URI:${CLIENT}:ok:TLSv1.3:camblet`);
      const o = outcomes();
      assert.deepEqual([o.error, o.unknown_origin, o.connect_failed], [2, 1, 1]);
      // Every counted outcome was reported, except unknown_origin (no connection to name).
      const counted = Object.values(o).reduce((a, b) => a + b, 0);
      assert.equal(events.length, counted - o.unknown_origin!);
      assert.deepEqual(
        events.slice(-4).map((e) => [e.outcome, e.reason !== undefined]),
        [["error", true], ["error", true], ["connect_failed", true], ["mtls", false]],
      );
      assert.match(events.at(-4)!.reason!, /policy engine down/);
    });

    await t.step("metrics", async () => {
      for (let i = 0; i < 100 && dp.metrics().active > 0; i++) {
        await new Promise((r) => setTimeout(r, 10)); // the last relay is still closing
      }
      const m = dp.metrics();
      assert.equal(m.active, 0);
      assert.ok(m.bytes.output > 0);
      assert.match(dp.prometheus(), /outcome="mtls",policy="p"\} 3/);
    });
  } finally {
    await dp.stop();
    for (const p of [peer, peer12, fake]) await p.close();
    await new Promise((r) => plainEcho.close(r));
    await pki.remove();
    await otherPki.remove();
  }
});
