/**
 * The shared server side (tls_contexts.ts): one `tls.Server` runs many handshakes at once, so
 * each connection must get its own TLS socket and peer verdict back, never another's.
 */
import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { TestPki } from "../../tests/dataplane/_pki.ts";
import { peerIdentity } from "./peer_identity.ts";
import { type IdentityTls, TlsContexts } from "./tls_contexts.ts";

const SERVER = "spiffe://ctx.test/server";

/** A listener handing every accepted socket to `ctx`'s shared server; resolves per connection. */
async function acceptor(ctx: IdentityTls, requestCert: boolean) {
  const results = new Map<number, Promise<{ peer: ReturnType<typeof peerIdentity> | Error }>>();
  const server = ctx.server({ requestCert, alpn: ["camblet"], handshakeTimeoutMs: 5000 });
  const lsn = net.createServer({ pauseOnConnect: true }, (s) => {
    s.on("error", () => {});
    results.set(
      s.remotePort!,
      new Promise((resolve) => {
        server.accept(s, {
          secure: (t) => {
            t.on("error", () => {});
            resolve({ peer: peerIdentity(t) });
            t.end();
          },
          error: (e) => resolve({ peer: e }),
        });
      }),
    );
  });
  await new Promise<void>((r) => lsn.listen(0, "127.0.0.1", r));
  return {
    port: (lsn.address() as net.AddressInfo).port,
    server,
    result: async (localPort: number) => {
      while (!results.has(localPort)) await new Promise((r) => setTimeout(r, 1));
      return (await results.get(localPort)!).peer;
    },
    close: () => new Promise<void>((r) => lsn.close(() => r())),
  };
}

function connect(port: number, opts: tls.ConnectionOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = tls.connect({
      host: "127.0.0.1",
      port,
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
      ALPNProtocols: ["camblet"],
      ...opts,
    });
    let localPort = 0;
    t.on("connect", () => localPort = t.localPort!);
    t.on("error", reject);
    t.on("data", () => {});
    t.on("end", () => t.end());
    t.on("close", () => resolve(localPort));
  });
}

Deno.test("shared TLS server: concurrent handshakes each get their own peer", async () => {
  const pki = await TestPki.create();
  const other = await TestPki.create("another root");
  try {
    const server = await pki.issue(SERVER);
    const ids = await Promise.all(
      [0, 1, 2, 3].map((i) => pki.issue(`spiffe://ctx.test/client-${i}`)),
    );
    const stranger = await other.issue("spiffe://ctx.test/client-0"); // same ID, wrong CA
    const contexts = new TlsContexts({ certificateFor: () => server });
    const ctx = await contexts.forIdentity(SERVER);
    assert.equal(ctx, await contexts.forIdentity(SERVER), "material reused");
    assert.equal(
      ctx.server({ requestCert: true, alpn: ["camblet"], handshakeTimeoutMs: 5000 }),
      ctx.server({ requestCert: true, alpn: ["camblet"], handshakeTimeoutMs: 5000 }),
      "one server per settings",
    );
    const a = await acceptor(ctx, true);
    try {
      // Twenty at once, mixed identities, plus an untrusted one and one without certificate.
      const runs = Array.from({ length: 20 }, (_, i) => {
        const id = ids[i % ids.length]!;
        return connect(a.port, { key: id.keyPem, cert: id.certPem, ca: id.bundlePem })
          .then(async (port) => ({ want: id.spiffeId, got: await a.result(port) }));
      });
      const strangerPort = connect(a.port, {
        key: stranger.keyPem,
        cert: stranger.certPem,
        ca: pki.caPem,
      });
      const anonymousPort = connect(a.port, { ca: pki.caPem });
      for (const r of await Promise.all(runs)) {
        assert.ok(!(r.got instanceof Error), String(r.got));
        assert.deepEqual(r.got, { verified: true, spiffeId: r.want });
      }
      const s = await a.result(await strangerPort);
      assert.ok(!(s instanceof Error));
      assert.equal(s.verified, false);
      assert.ok(s.verifyError);
      const n = await a.result(await anonymousPort);
      assert.ok(!(n instanceof Error));
      assert.equal(n.verified, false);
      assert.equal(n.verifyError, "peer sent no certificate");
      assert.equal(a.server.pending, 0, "nothing left behind");
    } finally {
      await a.close();
    }
  } finally {
    await pki.remove();
    await other.remove();
  }
});

Deno.test("shared TLS server: a failed handshake reports an error and is forgotten", async () => {
  const pki = await TestPki.create();
  try {
    const server = await pki.issue(SERVER);
    const ctx = await new TlsContexts({ certificateFor: () => server }).forIdentity(SERVER);
    const a = await acceptor(ctx, true);
    try {
      // Not TLS at all.
      const port = await new Promise<number>((resolve) => {
        const s = net.connect({ host: "127.0.0.1", port: a.port }, () => {
          const p = s.localPort!;
          s.end("GET / HTTP/1.0\r\n\r\n");
          s.on("close", () => resolve(p));
        });
        s.on("error", () => {});
        s.resume();
      });
      assert.ok((await a.result(port)) instanceof Error);
      assert.equal(a.server.pending, 0);
    } finally {
      await a.close();
    }
  } finally {
    await pki.remove();
  }
});
