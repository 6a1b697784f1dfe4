/**
 * A test agent: the proxy data plane with a table-driven policy, run inside a test's network
 * namespace (`nsenter --net=… deno run -A _agent.ts CONFIG.json`). It stands in for the daemon,
 * which will wire the policy matcher and the identity manager instead.
 *
 * stdout: `READY {outbound, inbound}` once serving, then one JSON line per stdin command
 * (`metrics`, `stats`, `stop`). stderr: the log (debug level).
 *
 * @module
 */
import { configure, type LogRecord } from "@logtape/logtape";
import { formatRecord } from "../../agent/log.ts";
import { startProxyDataPlane } from "../../driver/proxy/dataplane.ts";
import type { CertificateBundle, ProxyDecision } from "../../driver/proxy/types.ts";

/** One protected destination and the decision for it. */
export interface OutboundRule {
  ip: string;
  port: number;
  spiffeId: string;
  allowed: string[];
  mtls?: boolean;
}

/** One protected local port and the decision for it. */
export interface InboundRule {
  port: number;
  spiffeId: string;
  allowed: string[];
  mtls?: boolean;
}

/** The agent's configuration file. */
export interface TestAgentConfig {
  identities: Record<string, CertificateBundle>;
  outbound: OutboundRule[];
  inbound: InboundRule[];
  outboundPort?: number;
  inboundPort?: number;
  pinDir?: string;
}

function decision(r: OutboundRule | InboundRule | undefined, id: string): ProxyDecision {
  if (!r) return { intercepted: false, mtls: false, allowedSPIFFEIDs: [] };
  return {
    intercepted: true,
    mtls: r.mtls ?? true,
    allowedSPIFFEIDs: r.allowed,
    spiffeId: r.spiffeId,
    policy: { id },
  };
}

if (import.meta.main) {
  const enc = new TextEncoder();
  await configure({
    sinks: { stderr: (r: LogRecord) => Deno.stderr.writeSync(enc.encode(formatRecord(r))) },
    loggers: [
      {
        category: ["camblet"],
        lowestLevel: Deno.env.get("CAMBLET_TEST_LOG_LEVEL") === "info" ? "info" : "debug",
        sinks: ["stderr"],
      },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
  const cfg: TestAgentConfig = JSON.parse(await Deno.readTextFile(Deno.args[0]!));
  const norm = (ip: string) => ip.toLowerCase();
  const dp = await startProxyDataPlane({
    outboundPort: cfg.outboundPort ?? 15001,
    inboundPort: cfg.inboundPort ?? 15006,
    steering: cfg.pinDir ? { pinDir: cfg.pinDir } : {},
    identity: {
      certificateFor(spiffeId) {
        const b = cfg.identities[spiffeId];
        if (!b) throw new Error(`no certificate for ${spiffeId}`);
        return b;
      },
    },
    policy(conn) {
      if (conn.direction === "output") {
        const r = cfg.outbound.find((x) =>
          norm(x.ip) === norm(conn.destinationIp) && x.port === conn.destinationPort
        );
        return decision(r, `out-${conn.destinationPort}`);
      }
      return decision(
        cfg.inbound.find((x) => x.port === conn.destinationPort),
        `in-${conn.destinationPort}`,
      );
    },
  });
  dp.setProtectedDestinations(cfg.outbound.map((r) => ({ ip: r.ip, port: r.port })));
  dp.setInboundPorts(cfg.inbound.map((r) => r.port));
  const out = (v: unknown) =>
    Deno.stdout.writeSync(
      enc.encode(JSON.stringify(v, (_k, x) => typeof x === "bigint" ? Number(x) : x) + "\n"),
    );
  Deno.stdout.writeSync(
    enc.encode(`READY ${JSON.stringify({ outbound: dp.outbound, inbound: dp.inbound })}\n`),
  );
  const stop = async () => {
    await dp.stop();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of Deno.stdin.readable) {
    buf += dec.decode(chunk);
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const cmd = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (cmd === "metrics") out(dp.metrics());
      else if (cmd === "stats") out(dp.steeringStats());
      else if (cmd === "stop") await stop();
    }
  }
  await stop();
}
