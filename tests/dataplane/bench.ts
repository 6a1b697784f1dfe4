/**
 * Data-plane benchmark on two network namespaces of our own (root): iperf3 throughput through the
 * proxy pair against plain TCP over the same veth, new mTLS connections per second, added
 * latency of a request/response loop, and the agents' CPU and RSS. Prints a table and JSON.
 *
 *   deno run -A tests/dataplane/bench.ts [seconds=8] [runs=3] [rsa|ecdsa]
 *
 * @module
 */
import { createHosts, destroyHosts, type Hosts, IDS, startAgent } from "./_hosts.ts";
import { HOST_A, netnsSkipReason, type NsProcess } from "./_netns.ts";
import type { TestIdentity, TestPki } from "./_pki.ts";

const LOADGEN = new URL("./_loadgen.ts", import.meta.url).pathname;
const SECS = Number(Deno.args[0] ?? 8);
const RUNS = Number(Deno.args[1] ?? 3);
/** `ecdsa`: P-256 workload certificates instead of RSA-2048 (what the handshake rate costs). */
const ECDSA = Deno.args[2] === "ecdsa";
const HZ = 100; // USER_HZ of /proc/PID/stat
const QUIET = { CAMBLET_TEST_LOG_LEVEL: "info" }; // no per-connection debug lines

function cpuTicks(pid: number): number {
  const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime
}

function rssKb(pid: number): { rss: number; peak: number } {
  const s = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN);
  return { rss: kb("VmRSS"), peak: kb("VmHWM") };
}

/** Runs `fn` and returns its result with the agents' CPU use (1.0 = one core). */
async function withCpu<T>(
  h: Hosts,
  fn: () => Promise<T>,
): Promise<{ r: T; cpuA: number; cpuB: number }> {
  const a = h.agentA!.child.pid, b = h.agentB!.child.pid;
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
  const r = await h.pair.exec(h.pair.b, [Deno.execPath(), "run", "-A", LOADGEN, ...args], 120_000);
  if (r.code !== 0) throw new Error(`loadgen ${args.join(" ")}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const o = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!o.success) throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(o.stderr)}`);
}

/**
 * An ECDSA P-256 leaf for `spiffeId`, signed by the test root. Made here because the shared
 * test PKI issues RSA-2048 leaves whatever it is asked.
 */
async function issueEcdsa(pki: TestPki, spiffeId: string, n: number): Promise<TestIdentity> {
  const base = `${pki.dir}/bench-ec${n}`;
  await openssl(
    ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${base}.key`],
    pki.dir,
  );
  await Deno.writeTextFile(
    `${base}.ext`,
    `subjectAltName=URI:${spiffeId}\nkeyUsage=critical,digitalSignature\n` +
      `extendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:false\n`,
  );
  await openssl([
    "req",
    "-new",
    "-key",
    `${base}.key`,
    "-subj",
    "/CN=camblet-protected-workload",
    "-out",
    `${base}.csr`,
  ], pki.dir);
  await openssl([
    "x509",
    "-req",
    "-in",
    `${base}.csr`,
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-set_serial",
    String(9000 + n),
    "-days",
    "1",
    "-sha256",
    "-extfile",
    `${base}.ext`,
    "-out",
    `${base}.crt`,
  ], pki.dir); // deno-fmt-ignore
  return {
    spiffeId,
    certPem: await Deno.readTextFile(`${base}.crt`),
    keyPem: await Deno.readTextFile(`${base}.key`),
    chainPem: "",
    bundlePem: pki.caPem,
    certFile: `${base}.crt`,
    keyFile: `${base}.key`,
    caFile: pki.caFile,
  };
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const f = (n: number, d = 2) => Number.isFinite(n) ? n.toFixed(d) : String(n);

if (import.meta.main) {
  const skip = await netnsSkipReason();
  if (skip) {
    console.error(`Cannot run the benchmark: ${skip}`);
    Deno.exit(1);
  }
  let h: Hosts | undefined;
  const servers: NsProcess[] = [];
  try {
    h = await createHosts("b");
    if (ECDSA) {
      h.client = await issueEcdsa(h.pki, IDS.client, 1);
      h.server = await issueEcdsa(h.pki, IDS.server, 2);
    }
    const leafKey = new TextDecoder().decode(
      (await new Deno.Command("openssl", {
        args: ["x509", "-noout", "-text", "-in", h.server.certFile],
      }).output()).stdout,
    ).match(/Public Key Algorithm: (\S+)/)?.[1];
    // Tens of thousands of short connections from b to the same two ports leave as many
    // TIME_WAIT sockets: widen b's ephemeral range and let connect() reuse them.
    for (const [k, v] of [["ip_local_port_range", "1024 65000"], ["tcp_tw_reuse", "1"]]) {
      await h.pair.exec(h.pair.b, ["sysctl", "-q", "-w", `net.ipv4.${k}=${v}`]);
    }
    console.log(`workload keys: ${ECDSA ? "ECDSA P-256" : "RSA-2048"} (server leaf: ${leafKey})`);
    for (const port of [5201, 5202]) {
      servers.push(h.pair.spawn(h.pair.a, ["iperf3", "-s", "-p", String(port)]));
    }
    for (const port of [7000, 7001]) {
      const p = h.pair.spawn(h.pair.a, [
        Deno.execPath(),
        "run",
        "-A",
        LOADGEN,
        "echo",
        String(port),
      ]);
      await p.waitFor(/listening/);
      servers.push(p);
    }
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

    const plain: number[] = [], pair: number[] = [], cpuA: number[] = [], cpuB: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      plain.push(await iperf(h, 5201));
      const m = await withCpu(h, () => iperf(h!, 5202));
      pair.push(m.r);
      cpuA.push(m.cpuA);
      cpuB.push(m.cpuB);
    }
    const conn: Record<string, unknown>[] = [];
    for (const conc of [1, 16]) {
      const p = await loadgen(h, ["conns", HOST_A.ip4, "7001", String(conc), String(SECS)]);
      const m = await withCpu(
        h,
        () => loadgen(h!, ["conns", HOST_A.ip4, "7000", String(conc), String(SECS)]),
      );
      conn.push({ conc, plain: p, pair: m.r, cpuA: m.cpuA, cpuB: m.cpuB });
    }
    const rrPlain = await loadgen(h, ["rr", HOST_A.ip4, "7001", "3000", "64"]);
    const rrPair = await loadgen(h, ["rr", HOST_A.ip4, "7000", "3000", "64"]);
    const memA = rssKb(h.agentA.child.pid), memB = rssKb(h.agentB.child.pid);

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
    console.log(JSON.stringify({ plain, pair, cpuA, cpuB, conn, rrPlain, rrPair, memA, memB }));
  } finally {
    await destroyHosts(h);
  }
}
