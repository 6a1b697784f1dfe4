/**
 * Data-plane benchmark on two network namespaces of our own (root): iperf3 throughput through the
 * proxy pair against plain TCP over the same veth, new mTLS connections per second, added
 * latency of a request/response loop, and the agents' CPU and RSS. Prints a table and JSON.
 *
 *   deno run -A tests/dataplane/bench.ts [seconds=8] [runs=3] [rsa|ecdsa] [stand-in|daemon]
 *
 * `stand-in` (default): the agents are tests/dataplane/_agent.ts, the proxy library alone with
 * static identities. `daemon`: the real daemon (`main.ts run --driver proxy`, default verbosity),
 * configured by policy and services files as users run it; the workloads are attested by their
 * process names, get certificates from a `ca create-root` CA, and the server agent's counters must
 * show every measured connection as mTLS.
 *
 * @module
 */
import { createHosts, destroyHosts, type Hosts, IDS, startAgent } from "./_hosts.ts";
import { HOST_A, netnsSkipReason, type NsProcess } from "./_netns.ts";
import { createRootCa, DaemonAgent } from "./_daemon_agent.ts";

const LOADGEN = new URL("./_loadgen.ts", import.meta.url).pathname;
const SECS = Number(Deno.args[0] ?? 8);
const RUNS = Number(Deno.args[1] ?? 3);
/** `ecdsa`: P-256 workload certificates instead of RSA-2048 (what the handshake rate costs). */
const ECDSA = Deno.args[2] === "ecdsa";
const MODE = Deno.args[3] ?? "stand-in";
const HZ = 100; // USER_HZ of /proc/PID/stat
const QUIET = { CAMBLET_TEST_LOG_LEVEL: "info" }; // no per-connection debug lines
/**
 * The loadgen's process name in daemon mode (a link to the deno binary), so that policies can
 * select it without selecting `deno`, the agent's own name.
 */
const LOADGEN_NAME = "bench-loadgen";
/** The deno the loadgen runs as (see {@linkcode LOADGEN_NAME}). */
let loadgenDeno = Deno.execPath();

function cpuTicks(pid: number): number {
  const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime
}

function rssKb(pid: number): { rss: number; peak: number } {
  const s = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN);
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

/** The agents' pids (CPU and memory are theirs) and, in daemon mode, the real daemons. */
interface Agents {
  a: number;
  b: number;
  daemons?: { a: DaemonAgent; b: DaemonAgent };
}

/** Runs `fn` and returns its result with the agents' CPU use (1.0 = one core). */
async function withCpu<T>(
  { a, b }: Agents,
  fn: () => Promise<T>,
): Promise<{ r: T; cpuA: number; cpuB: number }> {
  const [a0, b0, t0] = [cpuTicks(a), cpuTicks(b), performance.now()];
  const r = await fn();
  const secs = (performance.now() - t0) / 1000;
  return { r, cpuA: (cpuTicks(a) - a0) / HZ / secs, cpuB: (cpuTicks(b) - b0) / HZ / secs };
}

async function iperf(h: Hosts, port: number): Promise<number> {
  const r = await h.pair.exec(h.pair.b, [
    "iperf3",
    "-c",
    HOST_A.ip4,
    "-p",
    String(port),
    "-t",
    String(SECS),
    "-J",
    "--connect-timeout",
    "3000",
  ], (SECS + 20) * 1000); // deno-fmt-ignore
  const j = JSON.parse(r.stdout);
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  return j.end.sum_received.bits_per_second / 1e9;
}

async function loadgen(h: Hosts, args: string[]): Promise<Record<string, number>> {
  const r = await h.pair.exec(h.pair.b, [loadgenDeno, "run", "-A", LOADGEN, ...args], 120_000);
  if (r.code !== 0) throw new Error(`loadgen ${args.join(" ")}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

/** Policies of the server agent (a): iperf3 on 5202 and the loadgen echo on 7000 are protected. */
const SERVER_POLICY = `
- selectors:
    - { process:name: iperf3, destination:port: 5202, direction: input }
    - { process:name: ${LOADGEN_NAME}, destination:port: 7000, direction: input }
  certificate: { workloadID: bench-server, ttl: 1h }
  connection: { mtls: STRICT, allowedSPIFFEIDs: ["spiffe://{{.TrustDomain}}/bench-client"] }
`;

/** Policies of the client agent (b): iperf3 and the loadgen dial out as bench-client. */
const CLIENT_POLICY = `
- selectors:
    - { process:name: iperf3, direction: output }
    - { process:name: ${LOADGEN_NAME}, direction: output }
  certificate: { workloadID: bench-client, ttl: 1h }
  connection: { mtls: STRICT, allowedSPIFFEIDs: ["spiffe://{{.TrustDomain}}/bench-server"] }
`;

/** Client agent's protected destinations: only the protected ports (5201 and 7001 stay plain). */
const SERVICES = `
- addresses:
    - { address: ${HOST_A.ip4}, port: 5202 }
    - { address: ${HOST_A.ip4}, port: 7000 }
  labels:
    app:label: bench
`;

/** Outcomes that mean a measured connection was not mTLS (or not through both agents). */
const NOT_MTLS = ["plain", "tls", "passthrough", "unknown_origin"];

/**
 * Starts the real daemons (a: server side, b: client side) on a CA of their own, waits until a
 * protects 5202 and 7000, and proves mTLS with a warm-up round trip. Returns the pids and the
 * server leaf's key algorithm, as a client sees it.
 */
async function startDaemons(h: Hosts): Promise<{ agents: Agents; leafKey: string | undefined }> {
  const dir = h.pki.dir;
  await createRootCa(`${dir}/daemon-ca.pem`, "bench root");
  const common = {
    caPemPath: `${dir}/daemon-ca.pem`,
    trustDomain: "dp.test",
    proxy: { keyType: ECDSA ? "ecdsa" : "rsa" },
    verbosity: 0,
  };
  const [a, b] = await Promise.all([
    DaemonAgent.start(h.pair, {
      ...common,
      ns: h.pair.a,
      dir: `${dir}/daemon-a`,
      policies: { "bench.yaml": SERVER_POLICY },
      services: {},
    }),
    DaemonAgent.start(h.pair, {
      ...common,
      ns: h.pair.b,
      dir: `${dir}/daemon-b`,
      policies: { "bench.yaml": CLIENT_POLICY },
      services: { "bench.yaml": SERVICES },
    }),
  ]);
  const agents: Agents = { a: await a.pid(), b: await b.pid(), daemons: { a, b } };
  await a.waitForProtectedPorts([5202, 7000]);
  const protectedPorts = (await a.status()).proxy?.protectedPorts;
  if (protectedPorts?.join() !== "5202,7000") {
    throw new Error(`Server agent protects ${protectedPorts}, want 5202,7000 only`);
  }
  const destinations = (await b.status()).proxy?.protectedDestinations;
  if (destinations !== 2) throw new Error(`Client agent protects ${destinations} destinations`);
  // The server's certificate as a client sees it: openssl (no policy on b, so b lets it through
  // unchanged) gets a's certificate, then a refuses it for having none of its own. The mTLS
  // checks count from their own start, after this; the warnings are reported from after it too.
  const probe = await h.pair.exec(h.pair.b, [
    "sh",
    "-c",
    `openssl s_client -connect ${HOST_A.ip4}:7000 </dev/null 2>/dev/null | ` +
    "openssl x509 -noout -text",
  ], 20_000);
  const leafKey = probe.stdout.match(/Public Key Algorithm: (\S+)/)?.[1];
  await checkedMtls(agents, "warm-up", 1, () => loadgen(h, ["rr", HOST_A.ip4, "7000", "20", "64"]));
  return { agents, leafKey };
}

/**
 * Runs `fn` (a protected measurement that made at least `want` connections) and, in daemon mode,
 * throws unless the server agent counted at least that many more mTLS connections and neither
 * agent counted a connection that was not mTLS. The stand-in mode just runs `fn`.
 */
async function checkedMtls<T>(
  agents: Agents,
  what: string,
  want: number | ((r: T) => number),
  fn: () => Promise<T>,
): Promise<T> {
  if (!agents.daemons) return await fn();
  const { a, b } = agents.daemons;
  const counts = async () => {
    const [sa, sb] = await Promise.all([a.status(), b.status()]);
    return { a: sa.proxy?.connections ?? {}, b: sb.proxy?.connections ?? {} };
  };
  const before = await counts();
  const r = await fn();
  const n = typeof want === "number" ? want : want(r);
  const mtls = await a.waitForCount("input/mtls", (before.a["input/mtls"] ?? 0) + n) -
    (before.a["input/mtls"] ?? 0);
  const after = await counts();
  const bad: string[] = [];
  for (const [side, dir] of [["a", "input"], ["b", "output"]] as const) {
    for (const o of NOT_MTLS) {
      const d = (after[side][`${dir}/${o}`] ?? 0) - (before[side][`${dir}/${o}`] ?? 0);
      if (d > 0) bad.push(`${side} ${dir}/${o} +${d}`);
    }
  }
  if (mtls < n || bad.length) {
    throw new Error(
      `${what}: not mTLS: the server agent counted ${mtls} mTLS connections, want ${n}` +
        (bad.length ? `; ${bad.join(", ")}` : "") +
        `\nserver agent log:\n${a.log.slice(-3000)}\nclient agent log:\n${b.log.slice(-3000)}`,
    );
  }
  return r;
}

/** The daemons' warnings and errors logged after character `from` of each log. */
function daemonProblems(d: { a: DaemonAgent; b: DaemonAgent }, from: [number, number]): string[] {
  const problems = (x: DaemonAgent, start: number, side: string) =>
    x.log.slice(start).split("\n").filter((l) => /^\S+ (WARNING|ERROR|FATAL) /.test(l))
      .map((l) => `${side}: ${l}`);
  return [...problems(d.a, from[0], "server"), ...problems(d.b, from[1], "client")];
}

/** Starts the stand-in agents (the proxy library with static identities). */
async function startStandIns(h: Hosts): Promise<Agents> {
  const ids = (i: { spiffeId: string }) => ({ [i.spiffeId]: i as never });
  h.agentA = await startAgent(
    h,
    h.pair.a,
    {
      identities: ids(h.server),
      outbound: [],
      inbound: [5202, 7000].map((port) => ({
        port,
        spiffeId: IDS.server,
        allowed: [IDS.client],
      })),
    },
    "bench-a",
    QUIET,
  );
  h.agentB = await startAgent(
    h,
    h.pair.b,
    {
      identities: ids(h.client),
      outbound: [5202, 7000].map((port) => ({
        ip: HOST_A.ip4,
        port,
        spiffeId: IDS.client,
        allowed: [IDS.server],
      })),
      inbound: [],
    },
    "bench-b",
    QUIET,
  );
  await new Promise((r) => setTimeout(r, 500));
  return { a: h.agentA.child.pid, b: h.agentB.child.pid };
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const f = (n: number, d = 2) => Number.isFinite(n) ? n.toFixed(d) : String(n);

if (import.meta.main) {
  if (MODE !== "stand-in" && MODE !== "daemon") {
    console.error(`Unknown mode "${MODE}": stand-in or daemon`);
    Deno.exit(2);
  }
  const skip = await netnsSkipReason();
  if (skip) {
    console.error(`Cannot run the benchmark: ${skip}`);
    Deno.exit(1);
  }
  let h: Hosts | undefined;
  let agents: Agents | undefined;
  const servers: NsProcess[] = [];
  try {
    h = await createHosts("b");
    const daemon = MODE === "daemon";
    if (ECDSA && !daemon) {
      h.client = await h.pki.issue(IDS.client, { ecdsa: true });
      h.server = await h.pki.issue(IDS.server, { ecdsa: true });
    }
    if (daemon) {
      loadgenDeno = `${h.pki.dir}/${LOADGEN_NAME}`;
      await Deno.symlink(Deno.execPath(), loadgenDeno);
    }
    // Tens of thousands of short connections from b to the same two ports leave as many
    // TIME_WAIT sockets: widen b's ephemeral range and let connect() reuse them.
    for (const [k, v] of [["ip_local_port_range", "1024 65000"], ["tcp_tw_reuse", "1"]]) {
      await h.pair.exec(h.pair.b, ["sysctl", "-q", "-w", `net.ipv4.${k}=${v}`]);
    }
    console.log(
      daemon
        ? `mode: daemon (main.ts run --driver proxy, agent.proxy.keyType ${
          ECDSA ? "ecdsa" : "rsa"
        })`
        : "mode: stand-in (tests/dataplane/_agent.ts, static identities)",
    );
    for (const port of [5201, 5202]) {
      servers.push(h.pair.spawn(h.pair.a, ["iperf3", "-s", "-p", String(port)]));
    }
    for (const port of [7000, 7001]) {
      const p = h.pair.spawn(h.pair.a, [
        loadgenDeno,
        "run",
        "-A",
        LOADGEN,
        "echo",
        String(port),
      ]);
      await p.waitFor(/listening/);
      servers.push(p);
    }
    let leafKey: string | undefined;
    if (daemon) {
      ({ agents, leafKey } = await startDaemons(h));
    } else {
      leafKey = new TextDecoder().decode(
        (await new Deno.Command("openssl", {
          args: ["x509", "-noout", "-text", "-in", h.server.certFile],
        }).output()).stdout,
      ).match(/Public Key Algorithm: (\S+)/)?.[1];
      agents = await startStandIns(h);
    }
    console.log(`workload keys: ${ECDSA ? "ECDSA P-256" : "RSA-2048"} (server leaf: ${leafKey})`);
    const ag = agents;
    const logFrom: [number, number] = ag.daemons
      ? [ag.daemons.a.log.length, ag.daemons.b.log.length]
      : [0, 0];

    const plain: number[] = [], pair: number[] = [], cpuA: number[] = [], cpuB: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      plain.push(await iperf(h, 5201));
      // One control and one data connection per iperf3 run.
      const m = await checkedMtls(ag, "iperf3", 2, () => withCpu(ag, () => iperf(h!, 5202)));
      pair.push(m.r);
      cpuA.push(m.cpuA);
      cpuB.push(m.cpuB);
    }
    const conn: Record<string, unknown>[] = [];
    for (const conc of [1, 16]) {
      const p = await loadgen(h, ["conns", HOST_A.ip4, "7001", String(conc), String(SECS)]);
      const m = await checkedMtls(
        ag,
        `conns ${conc}`,
        (m) => Math.max(1, m.r.conns!), // none made is a failure too
        () =>
          withCpu(ag, () => loadgen(h!, ["conns", HOST_A.ip4, "7000", String(conc), String(SECS)])),
      );
      conn.push({ conc, plain: p, pair: m.r, cpuA: m.cpuA, cpuB: m.cpuB });
    }
    const rrPlain = await loadgen(h, ["rr", HOST_A.ip4, "7001", "3000", "64"]);
    const rrPair = await checkedMtls(
      ag,
      "rr",
      1,
      () => loadgen(h!, ["rr", HOST_A.ip4, "7000", "3000", "64"]),
    );
    const memA = rssKb(ag.a), memB = rssKb(ag.b);

    console.log(`\nthroughput (iperf3, 1 stream, ${SECS} s, ${RUNS} runs; Gbit/s)`);
    console.log(
      `  plain TCP over the veth: ${plain.map((x) => f(x)).join(", ")} (median ${
        f(median(plain))
      })`,
    );
    console.log(
      `  through the proxy pair:  ${pair.map((x) => f(x)).join(", ")} (median ${f(median(pair))})`,
    );
    console.log(`  ratio: ${f(100 * median(pair) / median(plain), 1)} % of plain`);
    console.log(
      `  agent CPU during the pair runs (1.0 = one core): server ${
        cpuA.map((x) => f(x)).join("/")
      }, client ${cpuB.map((x) => f(x)).join("/")}`,
    );
    console.log(`\nnew connections (connect, 1-byte echo, close; ${SECS} s)`);
    for (const c of conn) {
      const p = c.plain as Record<string, number>, q = c.pair as Record<string, number>;
      console.log(
        `  concurrency ${c.conc}: plain ${f(p.perSecond!, 0)}/s p50 ${f(p.p50Ms!)} ms | mTLS pair ${
          f(q.perSecond!, 0)
        }/s p50 ${f(q.p50Ms!)} ms p99 ${f(q.p99Ms!)} ms, errors ${q.errors} | CPU server ${
          f(c.cpuA as number)
        } client ${f(c.cpuB as number)}`,
      );
    }
    console.log(`\nrequest/response (64 B, one connection, 3000 round trips)`);
    console.log(
      `  plain p50 ${f(rrPlain.p50Ms!, 3)} ms p99 ${f(rrPlain.p99Ms!, 3)} ms | pair p50 ${
        f(rrPair.p50Ms!, 3)
      } ms p99 ${f(rrPair.p99Ms!, 3)} ms`,
    );
    console.log(
      `  added: p50 ${f(rrPair.p50Ms! - rrPlain.p50Ms!, 3)} ms, p99 ${
        f(rrPair.p99Ms! - rrPlain.p99Ms!, 3)
      } ms`,
    );
    console.log(
      `\nagent memory (kB): server RSS ${memA.rss} peak ${memA.peak}; client RSS ${memB.rss} peak ${memB.peak}`,
    );
    const keyType = ECDSA ? "ecdsa" : "rsa";
    console.log(
      JSON.stringify({
        mode: MODE,
        keyType,
        plain,
        pair,
        cpuA,
        cpuB,
        conn,
        rrPlain,
        rrPair,
        memA,
        memB,
      }),
    );
    if (ag.daemons) {
      const problems = daemonProblems(ag.daemons, logFrom);
      console.log(`\ndaemon warnings/errors during the measurement: ${problems.length}`);
      for (const l of problems.slice(0, 10)) console.log(`  ${l}`);
    }
  } finally {
    // SIGTERM first: the daemons detach their programs and remove their sockets themselves.
    const d = agents?.daemons;
    if (d) await Promise.all([d.a, d.b].map((x) => x.stop("SIGTERM", 5000).catch(() => {})));
    await destroyHosts(h);
  }
}
