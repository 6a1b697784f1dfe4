import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { clientHelloAlpn, HandshakeSplitter, looksLikeTls, peekFirst } from "./passthrough.ts";

/** A real ClientHello, as node:tls sends it with `alpn`. */
async function clientHello(alpn?: string[]): Promise<Uint8Array> {
  let resolve!: (b: Uint8Array) => void;
  const got = new Promise<Uint8Array>((r) => resolve = r);
  const srv = net.createServer((s) => {
    s.once("data", (d) => {
      resolve(new Uint8Array(d));
      s.destroy();
    });
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const c = tls.connect({
    host: "127.0.0.1",
    port: (srv.address() as net.AddressInfo).port,
    rejectUnauthorized: false,
    ...(alpn ? { ALPNProtocols: alpn } : {}),
  });
  c.on("error", () => {});
  const hello = await got;
  c.destroy();
  await new Promise((r) => srv.close(r));
  return hello;
}

function record(type: number, len: number): Uint8Array {
  const r = new Uint8Array(5 + len).fill(0xab);
  r.set([type, 3, 3, len >> 8, len & 0xff]);
  return r;
}

Deno.test("clientHelloAlpn reads the ALPN offer of a real ClientHello", async () => {
  const hello = await clientHello(["camblet/passthrough", "camblet"]);
  assert.ok(looksLikeTls(hello));
  assert.deepEqual(clientHelloAlpn(hello), ["camblet/passthrough", "camblet"]);
  assert.equal(clientHelloAlpn(hello.subarray(0, 20)), undefined, "incomplete record");
  assert.equal(clientHelloAlpn(await clientHello()), null, "no ALPN extension");
  assert.equal(clientHelloAlpn(new TextEncoder().encode("GET / HTTP/1.1\r\n")), null);
  assert.equal(looksLikeTls(new TextEncoder().encode("GET /")), false);
});

Deno.test("HandshakeSplitter: records up to the one after ChangeCipherSpec, then raw bytes", () => {
  const s = new HandshakeSplitter();
  const hs = [record(22, 40), record(22, 300), record(20, 1), record(22, 40)];
  const raw = new TextEncoder().encode("\x16\x03\x01app's own TLS");
  const all = new Uint8Array([...hs.flatMap((r) => [...r]), ...raw]);
  // fed in awkward pieces: record headers split across chunks
  const a = s.push(all.subarray(0, 3));
  const b = s.push(all.subarray(3, 350));
  assert.equal(s.done, false);
  const c = s.push(all.subarray(350));
  assert.equal(s.done, true);
  const handshakeLen = hs.reduce((n, r) => n + r.length, 0);
  assert.equal(a.handshake.length + b.handshake.length + c.handshake.length, handshakeLen);
  assert.deepEqual([...c.rest], [...raw]);
  assert.deepEqual([...s.push(raw).rest], [...raw], "after the handshake everything is raw");
});

Deno.test("peekFirst reads the first bytes, or gives up after the timeout", async () => {
  const srv = net.createServer((s) => s.on("error", () => {}));
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => srv.once("connection", r));
  const c = net.connect({ host: "127.0.0.1", port });
  const s = await accepted;
  const quiet = await peekFirst(s, 30);
  assert.deepEqual(quiet, { ended: false });
  c.end("hello");
  const p = await peekFirst(s, 1000);
  assert.equal(new TextDecoder().decode(p.data), "hello");
  s.destroy();
  c.destroy();
  await new Promise((r) => srv.close(r));
});
