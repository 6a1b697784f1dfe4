/**
 * The two-host scenario of the data-plane tests: netns "a" runs a server application and an
 * agent protecting its inbound ports; netns "b" runs clients and an agent protecting outbound
 * connections to "a". Both agents are the real proxy data plane (tests/dataplane/_agent.ts).
 *
 * @module
 */
import { HOST_A, NetnsPair, type NsProcess } from "./_netns.ts";
import type { TestAgentConfig } from "./_agent.ts";
import { type TestIdentity, TestPki } from "./_pki.ts";
import { type TcpStream, tcpStreams } from "./_pcap.ts";

const AGENT = new URL("./_agent.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/** SPIFFE IDs used throughout. */
export const IDS = {
  client: "spiffe://dp.test/ns/b/sa/client",
  server: "spiffe://dp.test/ns/a/sa/web",
  other: "spiffe://dp.test/ns/a/sa/other",
} as const;

/** Everything a scenario test needs. */
export interface Hosts {
  pair: NetnsPair;
  pki: TestPki;
  client: TestIdentity;
  server: TestIdentity;
  /** Started on demand. */
  agentA?: NsProcess;
  agentB?: NsProcess;
}

/** Writes `cfg` to the PKI dir and starts the agent in `ns`; resolves once it is serving. */
export async function startAgent(
  h: Hosts,
  ns: string,
  cfg: TestAgentConfig,
  name: string,
  env?: Record<string, string>,
): Promise<NsProcess> {
  const file = `${h.pki.dir}/${name}.json`;
  await Deno.writeTextFile(file, JSON.stringify(cfg));
  const cmd = [Deno.execPath(), "run", "-A", "--quiet", `--config=${CONFIG}`, AGENT, file];
  const p = h.pair.spawn(ns, cmd, { stdin: true, ...(env ? { env } : {}) });
  await p.waitFor(/^READY /m, 30_000);
  return p;
}

/** Asks an agent for a JSON answer (`metrics`, `stats`). */
export async function ask<T>(agent: NsProcess, cmd: string): Promise<T> {
  const before = agent.stdout.length;
  await agent.send(cmd);
  const end = Date.now() + 5000;
  while (Date.now() < end) {
    const tail = agent.stdout.slice(before);
    const nl = tail.indexOf("\n");
    if (nl >= 0) return JSON.parse(tail.slice(0, nl)) as T;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`agent did not answer "${cmd}"`);
}

/** The default agent configurations: b protects a's ports 8000-8003 and 8443, a protects 8000-8003. */
export function defaultConfigs(h: Hosts): { a: TestAgentConfig; b: TestAgentConfig } {
  const ids = (...l: TestIdentity[]) => Object.fromEntries(l.map((i) => [i.spiffeId, i]));
  return {
    a: {
      identities: ids(h.server),
      outbound: [],
      inbound: [
        { port: 8000, spiffeId: IDS.server, allowed: [IDS.client] },
        { port: 8002, spiffeId: IDS.server, allowed: [IDS.client] },
        { port: 8003, spiffeId: IDS.server, allowed: [IDS.client] },
        // Only "other" may connect: the client is refused.
        { port: 8001, spiffeId: IDS.server, allowed: [IDS.other] },
      ],
    },
    b: {
      identities: ids(h.client),
      outbound: [8000, 8001, 8002, 8003, 8443].flatMap((port) => [
        { ip: HOST_A.ip4, port, spiffeId: IDS.client, allowed: ["spiffe://dp.test/ns/a"] },
        { ip: HOST_A.ip6, port, spiffeId: IDS.client, allowed: ["spiffe://dp.test/ns/a"] },
      ]),
      inbound: [],
    },
  };
}

/** Namespaces, PKI and identities (RSA unless `ecdsa`); agents not started. */
export async function createHosts(tag: string, options: { ecdsa?: boolean } = {}): Promise<Hosts> {
  const pki = await TestPki.create();
  try {
    const ecdsa = options.ecdsa ?? false;
    const client = await pki.issue(IDS.client, { exponent3: true, ecdsa }); // like camblet-driver's key
    const server = await pki.issue(IDS.server, { ecdsa });
    const pair = await NetnsPair.create(tag);
    return { pair, pki, client, server };
  } catch (e) {
    await pki.remove();
    throw e;
  }
}

/** Stops everything and deletes namespaces and PKI. */
export async function destroyHosts(h: Hosts | undefined): Promise<void> {
  if (!h) return;
  await h.pair.cleanup();
  await h.pki.remove();
}

/** What {@linkcode capture} and {@linkcode httpServer} need: the namespaces and a scratch dir. */
export interface Scratch {
  pair: NetnsPair;
  pki: { dir: string };
}

/** A tcpdump on host b's veth; `stop()` returns the reassembled TCP streams. */
export async function capture(
  h: Scratch,
  filter: string,
): Promise<{ stop(): Promise<TcpStream[]> }> {
  const file = `${h.pki.dir}/cap-${Date.now()}-${Math.random().toString(36).slice(2)}.pcap`;
  // --immediate-mode: otherwise packets wait in a capture block and a quick stop loses them.
  const args = ["-i", "veth-b", "--immediate-mode", "-U", "-s", "0", "-w", file, filter];
  const p = h.pair.spawn(h.pair.b, ["tcpdump", ...args]);
  await p.waitFor(/listening on/, 10_000, "err");
  return {
    async stop() {
      // The last packets (FINs, a late record) can trail the client's exit on a loaded machine:
      // wait until the packet-buffered file has been quiet for 300 ms (at most 5 s).
      const size = () => Deno.stat(file).then((s) => s.size, () => 0);
      let last = await size();
      let quietSince = Date.now();
      for (const end = Date.now() + 5000; Date.now() < end && Date.now() - quietSince < 300;) {
        await new Promise((r) => setTimeout(r, 50));
        const now = await size();
        if (now !== last) [last, quietSince] = [now, Date.now()];
      }
      await p.stop("SIGINT");
      return tcpStreams(await Deno.readFile(file));
    },
  };
}

/**
 * `python3 -m http.server` in host a serving `dir` on `port` (all addresses, dual stack), with a
 * listen backlog of 256 instead of Python's 5: under a burst of 100 connections a full accept queue
 * drops the handshake's last ACK and the connection can sit in SYN_RECV past any client timeout,
 * with or without our agents in the path.
 */
export async function httpServer(h: Scratch, port: number, dir: string): Promise<NsProcess> {
  const run = "import runpy, socketserver, sys; socketserver.TCPServer.request_queue_size = 256; " +
    "sys.argv = ['http.server'] + sys.argv[1:]; runpy.run_module('http.server', run_name='__main__')";
  const p = h.pair.spawn(h.pair.a, [
    "python3",
    "-u",
    "-c",
    run,
    String(port),
    "--bind",
    "::",
    "--directory",
    dir,
  ]); // deno-fmt-ignore
  await p.waitFor(/Serving HTTP/, 10_000);
  return p;
}
