/**
 * The real daemon with `--driver proxy` on two hosts of our own (network namespaces joined by a
 * veth pair): agent "a" protects python3 http.server's ports by inbound policies, agent "b"
 * protects outbound connections to a's services. Both share one self-signed CA (trust domain
 * dp.test) and are configured only by YAML files and flags, as a user would. Unmodified
 * applications: curl and python3 urllib on b. Needs root, libbpf1, cgroup v2, tcpdump; skipped
 * with the reason otherwise.
 */
import assert from "node:assert/strict";
import { skip as skipped } from "../_skip.ts";
import { runCli } from "../cli/_run.ts";
import { createRootCa, DaemonAgent } from "./_daemon_agent.ts";
import { capture, httpServer, type Scratch } from "./_hosts.ts";
import { HOST_A, HOST_B, NetnsPair, netnsSkipReason, type NsProcess } from "./_netns.ts";
import { contains, notTlsRecords } from "./_pcap.ts";

const skip = await netnsSkipReason();

const TD = "dp.test";
const MARKER = `camblet-daemon-marker-${crypto.randomUUID()}`;
const id = (workload: string) => `spiffe://${TD}/${workload}`;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

/**
 * Host a: python3 serves 8000 and 8004 (curl and python clients may connect) and 8001 (only
 * "other"). 8004 is started after the agent, for the listener scan to find.
 */
const A_WEB = `
- selectors:
    - { process:name: python3, destination:port: [8000, 8004], direction: input }
  certificate: { workloadID: web, ttl: 1h }
  connection:
    mtls: STRICT
    allowedSPIFFEIDs: ["spiffe://{{.TrustDomain}}/curl-client", "spiffe://{{.TrustDomain}}/py-client"]
- selectors:
    - { process:name: python3, destination:port: 8001, direction: input }
  certificate: { workloadID: web, ttl: 1h }
  connection: { mtls: STRICT, allowedSPIFFEIDs: ["spiffe://{{.TrustDomain}}/other"] }
`;

/** Host a, port 8002: the policy the reload step rewrites. */
function reloadPolicy(allowed: string): string {
  return `
- selectors:
    - { process:name: python3, destination:port: 8002, direction: input }
  certificate: { workloadID: web, ttl: 1h }
  connection: { mtls: STRICT, allowedSPIFFEIDs: ["${allowed}"] }
`;
}

/** Host b: curl and python3 get their own identities towards a's web server. */
const B_CLIENTS = `
- selectors:
    - { process:name: curl, direction: output }
  certificate: { workloadID: curl-client, ttl: 1h }
  connection: { mtls: STRICT, allowedSPIFFEIDs: ["spiffe://{{.TrustDomain}}/web"] }
- selectors:
    - { process:name: python3, direction: output }
  certificate: { workloadID: py-client, ttl: 1h }
  connection: { mtls: STRICT, allowedSPIFFEIDs: ["spiffe://{{.TrustDomain}}/web"] }
`;

/** Host b's protected destinations; a:8003 is left out on purpose (unprotected). */
const B_SERVICES = `
- addresses:
    - { address: ${HOST_A.ip4}, port: 8000 }
    - { address: ${HOST_A.ip4}, port: 8001 }
    - { address: ${HOST_A.ip4}, port: 8002 }
    - { address: ${HOST_A.ip4}, port: 8004 }
    - { address: "${HOST_A.ip6}", port: 8000 }
  labels:
    app:label: web
`;

async function sh(cmd: string[]): Promise<{ ok: boolean; err: string }> {
  const o = await new Deno.Command(cmd[0]!, { args: cmd.slice(1), stdout: "null", stderr: "piped" })
    .output();
  return { ok: o.success, err: new TextDecoder().decode(o.stderr) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How many requests for the page an http.server logged (it logs each to stderr). */
const served = (app: NsProcess) => app.stderr.split("\n").filter((l) => l.includes("GET /")).length;

Deno.test({
  name: "daemon --driver proxy: transparent mTLS between two network namespaces",
  ignore: skipped(skip),
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "camblet-dp-daemon-" });
    let pair: NetnsPair | undefined;
    const agents: DaemonAgent[] = [];
    let failed = false;
    let bpffs: string | undefined;
    const step = async (name: string, fn: () => Promise<void>) => {
      if (!(await t.step(name, fn))) failed = true;
    };
    try {
      pair = await NetnsPair.create("d");
      const p = pair;
      const scratch: Scratch = { pair: p, pki: { dir } };
      await Deno.mkdir(`${dir}/www`);
      await Deno.writeTextFile(`${dir}/www/hello.txt`, `${MARKER}\n`);
      const apps = new Map<number, NsProcess>();
      for (const port of [8000, 8001, 8002, 8003]) {
        apps.set(port, await httpServer(scratch, port, `${dir}/www`));
      }
      // One CA for both agents, as the Go agent's `ca create-root` would make it.
      await createRootCa(`${dir}/ca.pem`, "dp.test root");
      const common = {
        caPemPath: `${dir}/ca.pem`,
        trustDomain: TD,
        proxy: { listenerScanInterval: "500ms" },
      };
      const [a, b] = await Promise.all([
        DaemonAgent.start(p, {
          ...common,
          ns: p.a,
          dir: `${dir}/agent-a`,
          policies: { "web.yaml": A_WEB, "reload.yaml": reloadPolicy(id("other")) },
          services: {},
        }),
        DaemonAgent.start(p, {
          ...common,
          ns: p.b,
          dir: `${dir}/agent-b`,
          policies: { "clients.yaml": B_CLIENTS },
          services: { "web.yaml": B_SERVICES },
        }),
      ]);
      agents.push(a, b);
      const curl = (url: string, extra: string[] = []) =>
        p.exec(p.b, ["curl", "-sS", "-m", "10", ...extra, url]);
      const page = `http://${HOST_A.ip4}:8000/hello.txt`;

      await step("curl gets the page over mTLS: only TLS records on the wire", async () => {
        const cap = await capture(scratch, "tcp port 8000");
        const r = await curl(page);
        const streams = await cap.stop();
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), MARKER);
        assert.equal(streams.length, 2, `want one connection, got ${streams.map((s) => s.key)}`);
        for (const s of streams) {
          assert.equal(notTlsRecords(s.data), undefined, `${s.key} is not TLS only`);
          assert.ok(!contains(s.data, MARKER) && !contains(s.data, "GET /"), `${s.key} plaintext`);
        }
        assert.equal(await b.waitForCount("output/mtls", 1), 1);
        assert.equal(await a.waitForCount("input/mtls", 1), 1);
        // What an operator sees: `camblet-agent status`, from outside the namespaces.
        for (const [agent, key] of [[a, "input/mtls"], [b, "output/mtls"]] as const) {
          const j = await runCli(["status", "--control-socket", agent.socket, "--output", "json"]);
          assert.equal(j.code, 0, j.stderr);
          const s = JSON.parse(j.stdout);
          assert.equal(s.dataPlane.kind, "proxy");
          assert.equal(s.dataPlane.reason, "--driver proxy");
          assert.equal(s.trustDomain, TD);
          assert.equal(s.proxy.connections[key], 1);
          assert.equal(s.proxy.failClosed, false);
        }
        const sa = await a.status();
        assert.deepEqual(sa.proxy?.protectedPorts, [8000, 8001, 8002], "8003: no policy matches");
        assert.match(JSON.stringify(sa.proxy?.identities), new RegExp(esc(id("web"))));
        const sb = await b.status();
        assert.equal(sb.proxy?.protectedDestinations, 5);
        assert.deepEqual(sb.proxy?.protectedPorts, []);
        assert.match(JSON.stringify(sb.proxy?.identities), new RegExp(esc(id("curl-client"))));
        const text = await runCli(["status", "--control-socket", b.socket]);
        assert.match(
          text.stdout,
          /data plane +proxy: eBPF steering \+ mTLS proxy \(--driver proxy\)/,
        );
        assert.match(
          await a.metrics(),
          /^camblet_proxy_connections_total\{direction="input",outcome="mtls",policy="[^"]+"\} 1$/m,
        );
      });

      await step("the server-side agent logs the client's SPIFFE ID", async () => {
        await a.waitForLog(
          new RegExp(`Accepted a protected connection from ${esc(id("curl-client"))}`),
          5000,
          0,
        );
        // And the client side the server's, with the attested curl process.
        await b.waitForLog(
          new RegExp(`"Connection protected" .*peerSpiffeId=${esc(id("web"))}`),
          5000,
          0,
        );
      });

      await step("python3 urllib gets the page with its own identity (py-client)", async () => {
        const code = `import urllib.request
print(urllib.request.urlopen("${page}", timeout=10).read().decode().strip())`;
        const r = await p.exec(p.b, ["python3", "-c", code]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), MARKER);
        await a.waitForLog(
          new RegExp(`Accepted a protected connection from ${esc(id("py-client"))}`),
          5000,
          0,
        );
        assert.match(JSON.stringify((await b.status()).proxy?.identities), /py-client/);
      });

      await step(
        "allowedSPIFFEIDs mismatch: a refuses, logs both IDs, counts denied",
        async () => {
          const before = await a.connections("input/denied");
          const r = await curl(`http://${HOST_A.ip4}:8001/hello.txt`);
          assert.notEqual(r.code, 0, "the refused request must fail");
          assert.ok(!r.stdout.includes(MARKER));
          assert.equal(await a.waitForCount("input/denied", before + 1), before + 1);
          await a.waitForLog(
            new RegExp(
              `WARNING .*"Denied the client: .*spiffeId=${esc(id("web"))} ` +
                `peerSpiffeId=${esc(id("curl-client"))}`,
            ),
            5000,
            0,
          );
          assert.equal(served(apps.get(8001)!), 0, "nothing reached the application");
        },
      );

      await step("an unprotected destination is untouched: plaintext on the wire", async () => {
        const cap = await capture(scratch, "tcp port 8003");
        const r = await curl(`http://${HOST_A.ip4}:8003/hello.txt`);
        const streams = await cap.stop();
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), MARKER);
        assert.ok(streams.some((s) => contains(s.data, "GET /hello.txt")), "request in clear");
        assert.ok(streams.some((s) => contains(s.data, MARKER)), "page in clear");
      });

      await step("IPv6: a services entry with a's IPv6 address", async () => {
        const before = await a.connections("input/mtls");
        const cap = await capture(scratch, "tcp port 8000");
        const r = await curl(`http://[${HOST_A.ip6}]:8000/hello.txt`, ["-g"]);
        const streams = await cap.stop();
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), MARKER);
        assert.ok(streams.length > 0, "the connection crossed the veth");
        for (const s of streams) {
          assert.match(s.key, /^fd99:/, "over IPv6");
          assert.equal(notTlsRecords(s.data), undefined, `${s.key} is not TLS only`);
        }
        assert.equal(await a.waitForCount("input/mtls", before + 1), before + 1);
        await a.waitForLog(
          new RegExp(
            `Accepted a protected connection from ${esc(id("curl-client"))}.*` +
              `source=\\[${esc(HOST_B.ip6)}\\]:\\d+`,
          ),
          5000,
          0,
        );
      });

      await step("a listener started after the agent is protected by the next scan", async () => {
        const before = await a.connections("input/mtls");
        apps.set(8004, await httpServer(scratch, 8004, `${dir}/www`));
        await a.waitForProtectedPorts([8004]); // the scan runs every 500 ms
        const r = await curl(`http://${HOST_A.ip4}:8004/hello.txt`);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), MARKER);
        assert.equal(await a.waitForCount("input/mtls", before + 1), before + 1);
        await a.waitForLog(/"Protected local ports" ports=8000,8001,8002,8004/, 5000, 0);
      });

      await step("agent b restarts: fail-open while stopped, mTLS again after", async () => {
        const st = await b.stop("SIGTERM");
        assert.equal(st.code, 0, b.log.slice(-2000));
        assert.match(b.log, /"Proxy data plane stopped"/);
        // b's steering is gone: curl's request leaves b in plaintext. a still protects 8000
        // (STRICT), so it refuses the plaintext client and the application never sees it.
        const refusedBefore = await a.connections("input/handshake_failed");
        const servedBefore = served(apps.get(8000)!);
        const cap = await capture(scratch, "tcp port 8000");
        const direct = await curl(page, ["-m", "5"]);
        const streams = await cap.stop();
        assert.ok(
          streams.some((s) => s.dstPort === 8000 && contains(s.data, "GET /hello.txt")),
          "the request went direct, in plaintext",
        );
        assert.notEqual(direct.code, 0, "a's STRICT inbound policy refuses a plaintext client");
        assert.equal(
          await a.waitForCount("input/handshake_failed", refusedBefore + 1),
          refusedBefore + 1,
        );
        assert.equal(served(apps.get(8000)!), servedBefore);

        await b.restart();
        const r = await curl(page);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), MARKER);
        assert.equal(await b.waitForCount("output/mtls", 1), 1, "counted by the new process");
      });

      await step("100 concurrent connections all succeed", async () => {
        const [aBefore, bBefore] = await Promise.all([a.status(), b.status()]);
        // 100 threads released together by a barrier: 100 connections in flight at once.
        const code = `import threading, urllib.request
N = 100
barrier = threading.Barrier(N)
results = [None] * N
def get(i):
    barrier.wait()
    try:
        results[i] = urllib.request.urlopen("${page}", timeout=60).read().decode().strip()
    except Exception as e:
        results[i] = "error: %r" % e
threads = [threading.Thread(target=get, args=(i,)) for i in range(N)]
for t in threads: t.start()
for t in threads: t.join()
print(sum(1 for r in results if r == "${MARKER}"), N)
for r in results:
    if r != "${MARKER}": print(r)`;
        const r = await p.exec(p.b, ["python3", "-c", code], 120_000);
        assert.equal(r.stdout.trim(), "100 100", r.stdout + r.stderr);
        const key = (s: typeof aBefore, k: string) => s.proxy?.connections[k] ?? 0;
        const aMtls = await a.waitForCount("input/mtls", key(aBefore, "input/mtls") + 100);
        const bMtls = await b.waitForCount("output/mtls", key(bBefore, "output/mtls") + 100);
        assert.equal(aMtls - key(aBefore, "input/mtls"), 100);
        assert.equal(bMtls - key(bBefore, "output/mtls"), 100);
        const [aAfter, bAfter] = await Promise.all([a.status(), b.status()]);
        for (const k of ["input/handshake_failed", "input/error", "input/denied"]) {
          assert.equal(key(aAfter, k), key(aBefore, k), `a: ${k}`);
        }
        for (const k of ["output/handshake_failed", "output/error", "output/denied"]) {
          assert.equal(key(bAfter, k), key(bBefore, k), `b: ${k}`);
        }
      });

      await step("policy reload: a new allowedSPIFFEIDs applies without a restart", async () => {
        const url = `http://${HOST_A.ip4}:8002/hello.txt`;
        const pid = (await a.status()).pid;
        const denied = await curl(url, ["-m", "5"]);
        assert.notEqual(denied.code, 0, "8002 first allows only 'other'");
        const revision = (await a.status()).policy.revision;
        // The file watch picks the change up. Checked in the log, not lastReload: a second event
        // of the same rename may reload again ("unchanged") and replace lastReload.
        const fromWatch = a.log.length;
        await a.writePolicy("reload.yaml", reloadPolicy(id("curl-client")));
        const until = async (ok: boolean, what: string) => {
          const end = Date.now() + 20_000;
          for (;;) {
            const r = await curl(url, ["-m", "5"]);
            if ((r.code === 0 && r.stdout.trim() === MARKER) === ok) return;
            if (Date.now() > end) {
              assert.fail(`${what}: ${r.code} ${r.stderr}\n${a.log.slice(-3000)}`);
            }
            await sleep(200);
          }
        };
        await until(true, "the reloaded policy should allow curl-client");
        await a.waitForLog(/"Reloaded" reason=source pushed=\S*load_policies/, 10_000, fromWatch);
        const s = await a.status();
        assert.equal(s.pid, pid, "the same agent process");
        assert.ok(s.policy.revision > revision, `revision ${s.policy.revision} > ${revision}`);
        // And back, with SIGHUP as well (the watch may apply it first; SIGHUP reloads anyway).
        const fromSignal = a.log.length;
        await a.writePolicy("reload.yaml", reloadPolicy(id("other")));
        a.kill("SIGHUP");
        await until(false, "the reloaded policy should refuse curl-client again");
        await a.waitForLog(/"Reloaded.*reason=sighup/, 10_000, fromSignal);
        assert.equal((await a.status()).pid, pid);
      });

      await step("--fail-closed: pinned steering refuses while b is stopped", async () => {
        bpffs = `${dir}/bpffs`;
        await Deno.mkdir(bpffs);
        const m = await sh(["mount", "-t", "bpf", "bpf", bpffs]);
        assert.ok(m.ok, `mount bpffs: ${m.err}`);
        const pinDir = `${bpffs}/camblet-b`; // our own, not the default /sys/fs/bpf/camblet
        await b.stop();
        await b.restart({ proxy: { ...common.proxy, pinDir }, args: ["--fail-closed"] });
        assert.equal((await b.status()).proxy?.failClosed, true);
        assert.ok([...Deno.readDirSync(pinDir)].length > 0, "links pinned");
        const r = await curl(page);
        assert.equal(r.stdout.trim(), MARKER, r.stderr);
        // An orderly stop keeps the pins: refused, and nothing leaves b in plaintext.
        const st = await b.stop();
        assert.equal(st.code, 0);
        const cap = await capture(scratch, "tcp port 8000");
        const refused = await curl(page, ["-m", "5"]);
        const streams = await cap.stop();
        assert.equal(refused.code, 7, `curl must fail to connect: ${refused.stderr}`);
        assert.deepEqual(streams.map((s) => s.key), [], "nothing on the wire");
        // A new agent on the same pins serves again.
        await b.restart();
        const again = await curl(page);
        assert.equal(again.stdout.trim(), MARKER, again.stderr);
      });
    } finally {
      // SIGTERM first: the daemon detaches its programs and removes its socket itself.
      await Promise.all(agents.map((x) => x.stop("SIGTERM", 5000).catch(() => undefined)));
      const dump = Deno.env.get("CAMBLET_TEST_AGENT_LOGS");
      for (const [i, x] of agents.entries()) {
        if (dump) await Deno.writeTextFile(`${dump}/agent-${"ab"[i]}.log`, x.log);
        else if (failed) {
          console.error(`--- agent ${"ab"[i]} log (tail) ---\n${x.log.slice(-6000)}`);
        }
      }
      // Unmounting the private bpffs drops the pins with it.
      if (bpffs) await sh(["umount", bpffs]);
      await pair?.cleanup();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
