import assert from "node:assert/strict";
import net from "node:net";
import tls from "node:tls";
import { TestPki } from "../../tests/dataplane/_pki.ts";
import { relay, type RelayResult } from "./relay.ts";
import { socketFdDup } from "./sockopt.ts";

/** A listener that hands out its accepted sockets. */
async function listener(): Promise<
  { port: number; next(): Promise<net.Socket>; close(): Promise<void> }
> {
  const queue: net.Socket[] = [];
  const waiting: ((s: net.Socket) => void)[] = [];
  const srv = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => {
    const w = waiting.shift();
    if (w) w(s);
    else queue.push(s);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    next: () =>
      queue.length ? Promise.resolve(queue.shift()!) : new Promise((r) => waiting.push(r)),
    close: () => new Promise((r) => srv.close(() => r())),
  };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true }, () => resolve(s));
    s.once("error", reject);
  });
}

function readAll(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let out = "";
    s.on("data", (d) => out += String(d));
    s.once("end", () => resolve(out));
  });
}

/** client ↔ [a relay b] ↔ server, all plain TCP; `ahead` bytes were written to b already. */
async function plainChain(ahead = 0) {
  const front = await listener();
  const back = await listener();
  const client = await connect(front.port);
  const a = await front.next();
  const b = await connect(back.port);
  const server = await back.next();
  server.resume();
  let done!: (r: RelayResult) => void;
  const finished = new Promise<RelayResult>((r) => done = r);
  relay({ stream: a, tcp: a }, { stream: b, tcp: b }, { onDone: done, aToBAhead: ahead });
  return {
    client,
    server,
    finished,
    async close() {
      for (const s of [client, server, a, b]) s.destroy();
      await finished;
      await front.close();
      await back.close();
    },
  };
}

Deno.test("relay: bytes both ways and half-close as FIN", async () => {
  const c = await plainChain();
  const fromServer = readAll(c.client);
  const atServer = new Promise<string>((resolve) => {
    let got = "";
    c.server.on("data", (d) => got += String(d));
    // The client has half-closed: the server can still answer.
    c.server.once("end", () => {
      c.server.end(`echo:${got}`);
      resolve(got);
    });
  });
  c.client.end("hello");
  assert.equal(await atServer, "hello");
  assert.equal(await fromServer, "echo:hello");
  const r = await c.finished;
  assert.deepEqual([r.aToB, r.bToA, r.error], [5, 10, undefined]);
  await c.close();
});

Deno.test("relay: a first chunk the caller forwarded itself counts as sent", async () => {
  // What the outbound proxy does with the bytes it peeked to tell TLS from plaintext.
  const c = await plainChain(4);
  const atServer = new Promise<string>((resolve) => {
    let got = "";
    c.server.on("data", (d) => got += String(d));
    c.server.once("end", () => {
      c.server.end();
      resolve(got);
    });
  });
  c.client.end("rest");
  assert.equal(await atServer, "rest");
  const r = await c.finished;
  assert.deepEqual([r.aToB, r.bToA], [8, 0]);
  await c.close();
});

Deno.test("relay: a reset on one side resets the other", async () => {
  const c = await plainChain();
  c.client.on("error", () => {});
  const serverSaw = new Promise<string>((resolve) => {
    c.server.on("error", (e) => resolve((e as { code?: string }).code ?? e.message));
    c.server.on("end", () => resolve("end"));
  });
  c.client.write("x");
  await new Promise((r) => setTimeout(r, 50));
  c.client.resetAndDestroy();
  assert.equal(await serverSaw, "ECONNRESET");
  assert.equal((await c.finished).error?.message.includes("ECONNRESET"), true);
  await c.close();
});

Deno.test("relay: backpressure bounds what is buffered while the reader is paused", async () => {
  const c = await plainChain();
  c.server.pause();
  const chunk = new Uint8Array(64 * 1024);
  let written = 0;
  let blocked = false;
  for (let i = 0; i < 2048 && !blocked; i++) { // at most 128 MiB
    written += chunk.length;
    if (!c.client.write(chunk)) {
      await Promise.race([
        new Promise((r) => c.client.once("drain", r)),
        new Promise((r) => setTimeout(r, 300)),
      ]);
      blocked = c.client.writableLength > 0;
    }
  }
  assert.ok(blocked, "the writer must stall while the far reader is paused");
  assert.ok(written < 64 * 1024 * 1024, `stalled only after ${written} bytes`);
  c.client.on("error", () => {});
  await c.close();
});

Deno.test("relay: TLS leg: reset sent as RST and a received RST detected", async (t) => {
  const pki = await TestPki.create();
  const id = await pki.issue("spiffe://relay.test/server");
  // server side: TLS terminator relaying to a plain back end
  const back = await listener();
  const front = net.createServer({ allowHalfOpen: true }, (raw) => {
    const fd = socketFdDup(raw);
    const ts = tls.createServer({ key: id.keyPem, cert: id.certPem });
    ts.once("secureConnection", async (t) => {
      const b = await connect(back.port);
      relay({ stream: t, tcp: raw, fd }, { stream: b, tcp: b });
    });
    ts.emit("connection", raw);
  });
  await new Promise<void>((r) => front.listen(0, "127.0.0.1", r));
  const port = (front.address() as net.AddressInfo).port;
  try {
    await t.step("the TLS client resets: the back end sees ECONNRESET", async () => {
      const raw = await connect(port);
      const fd = socketFdDup(raw)!;
      const c = tls.connect({ socket: raw, rejectUnauthorized: false });
      c.on("error", () => {});
      await new Promise((r) => c.once("secureConnect", r));
      const server = await back.next();
      server.resume();
      const saw = new Promise<string>((resolve) => {
        server.on("error", (e) => resolve((e as { code?: string }).code ?? e.message));
        server.on("end", () => resolve("end"));
      });
      c.write("x");
      await new Promise((r) => setTimeout(r, 50));
      // What relay() does on a TLS leg: SO_LINGER 0 on the fd, then close.
      const { setLingerZero } = await import("./sockopt.ts");
      assert.ok(setLingerZero(fd));
      c.destroy();
      assert.equal(await saw, "ECONNRESET");
      server.destroy();
    });

    await t.step(
      "a paused back end stalls the TLS writer (nothing piles up in memory)",
      async () => {
        const c = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false });
        c.on("error", () => {});
        await new Promise((r) => c.once("secureConnect", r));
        const server = await back.next(); // paused (pauseOnConnect)
        const chunk = new Uint8Array(64 * 1024);
        let written = 0;
        for (let i = 0; i < 2048; i++) { // at most 128 MiB
          written += chunk.length;
          if (!c.write(chunk)) {
            const drained = await Promise.race([
              new Promise((r) => c.once("drain", () => r(true))),
              new Promise((r) => setTimeout(() => r(false), 500)),
            ]);
            if (!drained) break;
          }
        }
        assert.ok(written < 48 * 1024 * 1024, `the writer ran on for ${written} bytes`);
        c.destroy();
        server.destroy();
      },
    );
  } finally {
    await new Promise((r) => front.close(r));
    await back.close();
    await pki.remove();
  }
});
