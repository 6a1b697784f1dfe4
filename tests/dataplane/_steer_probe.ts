/**
 * Exercises the eBPF steering alone, inside host "a" of a test namespace pair: loads the
 * programs, runs real clients (python3) against protected and unprotected destinations, and
 * prints one JSON object with what every case observed. Argument: the name of netns "b".
 *
 * @module
 */
import net from "node:net";
import { Steering } from "../../driver/bpf/steering.ts";
import { findListenerFd } from "../../driver/proxy/sockopt.ts";

const OTHER_NS = Deno.args[0]!;

/** A server that answers every connection with one line from `reply`, then closes. */
function serve(host: string, port: number, reply: (s: net.Socket) => string): Promise<net.Server> {
  return new Promise((resolve) => {
    const srv = net.createServer((s) => {
      s.on("error", () => {});
      s.end(reply(s) + "\n");
    });
    srv.listen({ host, port }, () => resolve(srv));
  });
}

async function python(code: string, ns?: string): Promise<string> {
  const cmd = ns
    ? ["nsenter", `--net=/run/netns/${ns}`, "--", "python3", "-c", code]
    : ["python3", "-c", code];
  const o = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(o.stdout).trim() ||
    `error: ${new TextDecoder().decode(o.stderr).trim()}`;
}

/** A python client: connects, prints `<first line>|<getpeername host>|<port>`. */
function client(family: "AF_INET" | "AF_INET6", host: string, port: number): string {
  return `import socket
s = socket.socket(socket.${family})
s.settimeout(3)
try:
    s.connect(("${host}", ${port}))
    p = s.getpeername()
    print(s.makefile().readline().strip() + "|" + str(p[0]) + "|" + str(p[1]))
except Exception as e:
    print("error " + type(e).__name__)`;
}

function nodeConnect(opts: net.NetConnectOpts): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(opts);
    let out = "";
    s.on("data", (d) => out += String(d));
    s.on("end", () => resolve(out.trim()));
    s.on("error", (e) => resolve(`error ${(e as { code?: string }).code}`));
  });
}

const results: Record<string, unknown> = {};
const servers: net.Server[] = [];
const origin = (steering: Steering) => (s: net.Socket) => {
  const o = steering.originalDestination(s.remoteAddress!, s.remotePort!);
  return o ? `orig ${o.ip} ${o.port} pid=${o.pid > 0} uid=${o.uid}` : "no-origin";
};

const steering = Steering.start({ outboundPort: 15001 });
results.attached = steering.attached;
servers.push(await serve("127.0.0.1", 15001, origin(steering)));
servers.push(await serve("::1", 15001, origin(steering)));
servers.push(await serve("0.0.0.0", 8000, () => "app8000"));
servers.push(await serve("::", 8001, () => "app8001"));
servers.push(await serve("0.0.0.0", 8100, () => "app8100"));
const inbound = await serve(
  "127.0.0.1",
  15006,
  (s) => `agent-listener ${s.localAddress} ${s.localPort}`,
);
servers.push(inbound);

steering.setProtected([
  { ip: "127.0.0.1", port: 8000 },
  { ip: "::1", port: 8000 },
  { ip: "10.199.0.1", port: 8000 },
  { ip: "127.0.0.7" }, // every port
  { ip: "127.0.0.9", port: 1 }, // replaced below
]);
steering.setProtected([
  { ip: "127.0.0.1", port: 8000 },
  { ip: "::1", port: 8000 },
  { ip: "10.199.0.1", port: 8000 },
  { ip: "127.0.0.7" },
]);
results.protected = steering.protectedDestinations().map((d) => `${d.ip}:${d.port}`).sort();

results.v4 = await python(client("AF_INET", "127.0.0.1", 8000));
results.v4mapped = await python(client("AF_INET6", "::ffff:127.0.0.1", 8000));
results.v6 = await python(client("AF_INET6", "::1", 8000));
results.anyPort = await python(client("AF_INET", "127.0.0.7", 4321));
results.unprotected = await python(client("AF_INET6", "::1", 8001));
results.agentOwn = await nodeConnect({ host: "127.0.0.1", port: 8000 });
results.otherNetns = await python(client("AF_INET", "10.199.0.1", 8000), OTHER_NS);
results.originConsumed = steering.originalDestination("127.0.0.1", 1) === undefined;

steering.setInboundPorts([8100, 8200]);
steering.setInboundPorts([8100]);
steering.setListener(4, findListenerFd("127.0.0.1", 15006));
results.inbound = await python(client("AF_INET", "10.199.0.1", 8100), OTHER_NS);
results.onward = await nodeConnect({ host: "10.199.0.1", port: 8100, localAddress: "10.199.0.1" });
results.agentUnbound = await nodeConnect({ host: "10.199.0.1", port: 8100 });
steering.clearListener(4);
results.noListener = await python(client("AF_INET", "10.199.0.1", 8100), OTHER_NS);
results.stats = Object.fromEntries(
  Object.entries(steering.stats()).map(([k, v]) => [k, Number(v)]),
);

steering.close();
results.attachedAfterClose = steering.attached;
results.afterClose = await python(client("AF_INET", "127.0.0.1", 8000));
for (const s of servers) s.close();
console.log(JSON.stringify(results));
