import assert from "node:assert/strict";
import { join } from "node:path";
import { notifyAddress, sdNotify } from "./sd_notify.ts";

// A real receiver in another process: binds the datagram socket, says so, prints one datagram.
const RECEIVER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
addr = sys.argv[1]
s.bind("\\0" + addr[1:] if addr.startswith("@") else addr)
print("bound", flush=True)
s.settimeout(10)
print(s.recv(4096).decode(), end="", flush=True)
`;

async function receiveOne(socket: string, send: () => void): Promise<string> {
  const child = new Deno.Command("python3", {
    args: ["-c", RECEIVER, socket],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("bound\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  assert.ok(out.includes("bound\n"), `receiver did not bind: ${out}`);
  send();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  assert.equal((await child.status).code, 0);
  return out.slice(out.indexOf("bound\n") + "bound\n".length);
}

Deno.test("sdNotify sends READY=1 to a path NOTIFY_SOCKET", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "notify");
    let sent = false;
    const got = await receiveOne(path, () => {
      sent = sdNotify("READY=1\nSTATUS=Agent ready", { socket: path });
    });
    assert.equal(sent, true);
    assert.equal(got, "READY=1\nSTATUS=Agent ready");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sdNotify reaches an abstract-namespace socket (@name)", async () => {
  const name = `@camblet-sd-notify-test-${Deno.pid}-${crypto.randomUUID()}`;
  const got = await receiveOne(name, () => sdNotify("READY=1", { socket: name }));
  assert.equal(got, "READY=1");
});

Deno.test("sdNotify does nothing without NOTIFY_SOCKET", () => {
  assert.equal(sdNotify("READY=1", { socket: undefined }), false);
  assert.equal(sdNotify("READY=1", { socket: "" }), false);
});

Deno.test("sdNotify names the socket and errno when nobody listens", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "absent");
    assert.throws(
      () => sdNotify("READY=1", { socket: path }),
      (e: Error) => e.message.includes(`"${path}"`) && /No such file|sendto/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("notifyAddress rejects values that are not sockets", () => {
  assert.throws(() => notifyAddress("relative/path"), /neither a path nor an @abstract/);
  assert.throws(() => notifyAddress("/" + "x".repeat(200)), /longer than 107 bytes/);
  const a = notifyAddress("@x");
  assert.deepEqual([...a], [1, 0, 0, 0x78]);
});
