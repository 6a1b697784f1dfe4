import assert from "node:assert/strict";
import net from "node:net";
import {
  findListenerFd,
  findSocketFd,
  noDelayFd,
  socketFdDup,
  TCP_CLOSE,
  tcpState,
} from "./sockopt.ts";

Deno.test("findListenerFd / findSocketFd find this process's sockets", async () => {
  const srv = net.createServer((s) => s.end());
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  try {
    const fd = findListenerFd("127.0.0.1", port);
    assert.ok(fd > 2);
    assert.equal(findSocketFd({ local: { port }, listening: false }), undefined);
    assert.throws(
      () => findListenerFd("127.0.0.1", 1),
      /Cannot find the fd of the listener on 127.0.0.1:1/,
    );
  } finally {
    await new Promise((r) => srv.close(r));
  }
});

Deno.test("node:net sockets opened with noDelay really have TCP_NODELAY", async () => {
  let accepted: net.Socket | undefined;
  const srv = net.createServer({ noDelay: true }, (s) => accepted = s);
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  const c = net.connect({ host: "127.0.0.1", port, noDelay: true });
  await new Promise((r) => c.once("connect", r));
  while (!accepted) await new Promise((r) => setTimeout(r, 5));
  const fdC = socketFdDup(c)!;
  const fdS = socketFdDup(accepted)!;
  assert.equal(noDelayFd(fdC), true, "client socket");
  assert.equal(noDelayFd(fdS), true, "accepted socket");
  c.destroy();
  accepted.destroy();
  await new Promise((r) => srv.close(r));
});

function fdTarget(fd: number): string | undefined {
  try {
    return Deno.readLinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

Deno.test("socketFdDup: a dup that does not keep the socket open after close; TCP state", async () => {
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on("error", () => {});
    s.once("data", () => s.resetAndDestroy());
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  const c = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
  c.on("error", () => {});
  await new Promise((r) => c.once("connect", r));
  const closed = new Promise((r) => c.once("close", r));
  const fd = socketFdDup(c)!;
  assert.ok(fd > 2);
  assert.notEqual(tcpState(fd), TCP_CLOSE);
  const inode = fdTarget(fd);
  assert.match(inode ?? "", /^socket:\[\d+\]$/);
  c.write("x");
  await closed; // the server reset us
  await new Promise((r) => setTimeout(r, 10));
  // Test modules run in parallel in one process, so the fd number itself may already name
  // another socket: the dup is gone when the number no longer names the same inode.
  assert.notEqual(fdTarget(fd), inode, "the dup is closed with the socket");
  await new Promise((r) => srv.close(r));
  assert.equal(TCP_CLOSE, 7);
});
