/**
 * A real SPIRE deployment for tests: spire-server with an RSA CA (`ca_key_type = "rsa-2048"`) on a
 * Unix socket and a loopback port, and a spire-agent attested with a join token, running the unix
 * workload attestor with its Workload API on a Unix socket in a temp dir.
 *
 * @module
 */

import { join } from "node:path";
import { ensurePeer } from "./ensure_peer.ts";
import { freePort, type LoggedProcess, run, spawnLogged, waitFor } from "./_process.ts";

/** Options for {@linkcode startSpire}. */
export interface SpireOptions {
  /** Default `example.org`. */
  trustDomain?: string;
  /** The server CA key; the kernel driver needs RSA (default `rsa-2048`). */
  caKeyType?: "rsa-2048" | "rsa-4096" | "ec-p256" | "ec-p384";
  /** Server CA lifetime (default `24h`). */
  caTtl?: string;
  /** Default X509-SVID lifetime (default `1h`). */
  defaultX509SvidTtl?: string;
  /** Key type of the workload SVIDs the agent mints (default `rsa-2048`). */
  workloadKeyType?: "rsa-2048" | "ec-p256";
}

/** A running server and agent. */
export interface Spire {
  dir: string;
  trustDomain: string;
  /** `127.0.0.1:<port>`, the server's gRPC endpoint (agents and downstream CAs dial it). */
  serverAddress: string;
  /** The server API socket (for `spire-server` CLI calls). */
  serverSocket: string;
  /** The agent's Workload API socket. */
  agentSocket: string;
  /** `spiffe://<td>/spire/agent/join_token/<token>`, the parent of workload entries. */
  agentId: string;
  /** PEM of the server's trust bundle at start. */
  bundlePem: string;
  serverBin: string;
  agentBin: string;
  serverLog: string;
  agentLog: string;
  serverPid: number;
  agentPid: number;
  /** Stops agent and server, removes the temp dir. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts spire-server and spire-agent. Their logs stay in `dir` until {@linkcode Spire.stop}.
 *
 * @example
 * ```ts ignore
 * await using spire = await startSpire();
 * await createSpireEntry(spire, { spiffeId: "/camblet-agent", selectors: ["unix:uid:0"] });
 * const svid = await fetchX509Svid(spire);
 * ```
 */
export async function startSpire(options: SpireOptions = {}): Promise<Spire> {
  const [serverBin, agentBin] = [await ensurePeer("spire-server"), await ensurePeer("spire-agent")];
  const td = options.trustDomain ?? "example.org";
  const dir = await Deno.makeTempDir({ prefix: "camblet-spire-" });
  const serverSocket = join(dir, "server", "api.sock");
  const agentSocket = join(dir, "agent", "api.sock");
  const port = freePort();
  let server: LoggedProcess | undefined;
  let agent: LoggedProcess | undefined;
  const stop = async () => {
    await agent?.stop();
    await server?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await Deno.mkdir(join(dir, "server"));
    await Deno.mkdir(join(dir, "agent"));
    await Deno.writeTextFile(
      join(dir, "server.conf"),
      serverConf(dir, td, port, serverSocket, options),
    );
    server = await spawnLogged(serverBin, ["run", "-config", join(dir, "server.conf")], {
      logPath: join(dir, "server.log"),
      cwd: dir,
    });
    const sock = ["-socketPath", serverSocket];
    await waitFor("spire-server healthcheck", async () => {
      const r = await run(serverBin, ["healthcheck", ...sock], { check: false });
      return r.code === 0 ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 250, exited: server.child.status });
    const bundlePem = (await run(serverBin, ["bundle", "show", ...sock, "-format", "pem"])).stdout;
    await Deno.writeTextFile(join(dir, "bundle.pem"), bundlePem);
    const tokenOut = (await run(serverBin, ["token", "generate", ...sock, "-ttl", "3600"])).stdout;
    const token = /Token:\s*(\S+)/.exec(tokenOut)?.[1];
    if (token === undefined) throw new Error(`Cannot parse join token from "${tokenOut.trim()}"`);
    await Deno.writeTextFile(
      join(dir, "agent.conf"),
      agentConf(dir, td, port, agentSocket, token, options),
    );
    agent = await spawnLogged(agentBin, ["run", "-config", join(dir, "agent.conf")], {
      logPath: join(dir, "agent.log"),
      cwd: dir,
    });
    await waitFor("spire-agent healthcheck", async () => {
      const r = await run(agentBin, ["healthcheck", "-socketPath", agentSocket], { check: false });
      return r.code === 0 ? true : undefined;
    }, { timeoutMs: 60_000, intervalMs: 250, exited: agent.child.status });
    return {
      dir,
      trustDomain: td,
      serverAddress: `127.0.0.1:${port}`,
      serverSocket,
      agentSocket,
      agentId: `spiffe://${td}/spire/agent/join_token/${token}`,
      bundlePem,
      serverBin,
      agentBin,
      serverLog: server.logPath,
      agentLog: agent.logPath,
      serverPid: server.child.pid,
      agentPid: agent.child.pid,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (error) {
    const logs = [
      server && `server log:\n${await server.logTail()}`,
      agent && `agent log:\n${await agent.logTail()}`,
    ]
      .filter(Boolean).join("\n");
    await stop();
    throw new Error(`Cannot start SPIRE in ${dir}: ${(error as Error).message}\n${logs}`, {
      cause: error,
    });
  }
}

function serverConf(dir: string, td: string, port: number, socket: string, o: SpireOptions) {
  return `server {
  bind_address = "127.0.0.1"
  bind_port = "${port}"
  socket_path = "${socket}"
  trust_domain = "${td}"
  data_dir = "${join(dir, "server-data")}"
  log_level = "INFO"
  ca_key_type = "${o.caKeyType ?? "rsa-2048"}"
  ca_ttl = "${o.caTtl ?? "24h"}"
  default_x509_svid_ttl = "${o.defaultX509SvidTtl ?? "1h"}"
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "${join(dir, "server-data", "datastore.sqlite3")}"
    }
  }
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
}
`;
}

function agentConf(
  dir: string,
  td: string,
  port: number,
  socket: string,
  token: string,
  o: SpireOptions,
) {
  return `agent {
  data_dir = "${join(dir, "agent-data")}"
  log_level = "INFO"
  server_address = "127.0.0.1"
  server_port = "${port}"
  socket_path = "${socket}"
  trust_bundle_path = "${join(dir, "bundle.pem")}"
  trust_domain = "${td}"
  join_token = "${token}"
  workload_x509_svid_key_type = "${o.workloadKeyType ?? "rsa-2048"}"
}
plugins {
  NodeAttestor "join_token" {
    plugin_data {}
  }
  KeyManager "memory" {
    plugin_data {}
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`;
}
