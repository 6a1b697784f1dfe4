/**
 * The syscall audit in the real agent (started by its CLI on the kernel emulator, config file
 * `agent.audit`): a real shell command triggers a default rule, reported once on
 * `camblet-agent events` (process chain, labels, SPIFFE ID) and in the file sink; `status` and
 * `/metrics` show the counters; the kernel link answers throughout an event flood; a signed HTTP
 * bundle with an `audit/` directory swaps the rules without a restart, and bad bundles (Rego that
 * does not compile, a bad signature, a module without the filter entrypoint) keep the last good.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { skip } from "../_skip.ts";
import { exclusive } from "../_exclusive.ts";
import { captureMissing, RULES_DIR } from "./_rules.ts";
import { sh, under } from "./_shell.ts";
import { KernelEmulator } from "../../driver/emulator/kernel_emulator.ts";
import { ControlClient } from "../../agent/control/client.ts";
import type { AgentStatus } from "../../agent/daemon/status.ts";
import type { AuditRecord } from "../../agent/audit/engine.ts";
import { VIOLATIONS_ENTRYPOINT } from "../../agent/audit/rules.ts";
import { startAgent } from "../fakes/agent_process.ts";
import { until } from "../fakes/until.ts";
import { agentEntry, REPO_ROOT, runCli } from "../cli/_run.ts";
import { makeBundle, signingKey } from "../sources/_bundles.ts";
import { BundleServer } from "../sources/_bundle_server.ts";
import { peerPath } from "../peers/ensure_peer.ts";
import { opaBuildBundle } from "../peers/opa.ts";

const why = captureMissing();

const HOSTS_RULE = `package camblet.audit
filter contains {"rule": "Read hosts", "syscalls": ["openat"], "prefixes": ["/etc/hosts"]}
violations contains {"rule": "Read hosts", "severity": "notice", "output": sprintf("hosts read by %s", [input.proc.name])} if {
	input.syscall == "openat"
	input.path == "/etc/hosts"
}
`;

/**
 * The workloads: sh and cat get the SPIFFE ID `audited` (no egress); curl has an egress policy,
 * bash none.
 */
const POLICY = "- selectors: [{process:name: [sh, cat]}]\n  certificate: {workloadID: audited}\n" +
  "- selectors: [{process:name: curl}]\n  certificate: {workloadID: fetcher}\n" +
  "  egress:\n    - selectors: [{app:label: loop}]\n      certificate: {workloadID: fetcher-loop}\n";

/** Reads NDJSON lines of a child's stdout into `out`. */
async function collect(stream: ReadableStream<Uint8Array>, out: string[]): Promise<void> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    const lines = buf.split("\n");
    buf = lines.pop()!;
    out.push(...lines.filter((l) => l !== ""));
  }
}

Deno.test({
  name:
    "audit in the daemon: a real command's violation once on events and in the file sink, status counters, a flood with the kernel link answering, signed bundles swap rules and bad ones keep the last good",
  ignore: skip(why),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const server = BundleServer.start();
    const key = await signingKey();
    const sign = { privateKey: key.privateKey };
    const bundle = (revision: string, files: Record<string, string | Uint8Array>) =>
      makeBundle({ revision, files: { "policies/audited.yaml": POLICY, ...files }, sign });
    server.serve = { kind: "bundle", body: await bundle("r1", {}) };
    const dir = await Deno.makeTempDir({ prefix: "camblet-daemon-audit-" });
    const sink = join(dir, "audit.jsonl");
    // A webhook receiver on loopback: the records POSTed as JSON lines.
    const posted: AuditRecord[] = [];
    const webhook = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      for (const l of (await req.text()).split("\n")) if (l) posted.push(JSON.parse(l));
      return new Response("ok");
    });
    const config = join(dir, "config.yaml");
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        agent: {
          audit: {
            enabled: true,
            rules: RULES_DIR,
            opa: peerPath("opa"),
            sinks: {
              log: { enabled: false },
              file: { path: sink },
              webhook: { url: `http://127.0.0.1:${webhook.addr.port}/audit?token=s3cret` },
            },
          },
        },
        plugins: {
          policySource: [{
            type: "http",
            name: "hub",
            url: server.url(),
            pollInterval: "200ms",
            retryMin: "50ms",
            jitter: 0,
            timeout: "2s",
            verification: { key: key.publicPem },
          }],
        },
      }),
    );
    const emu = await KernelEmulator.open();
    const agent = await startAgent(emu, { args: ["--config", config] });
    const control = new ControlClient(agent.socket);
    const status = () => control.json<AgentStatus>("/v1/status");
    const audit = async () => {
      const a = (await status()).audit;
      assert.ok(a && a.state === "running", JSON.stringify(a));
      return a;
    };
    const hub = async () => (await status()).sources.sources.find((s) => s.id === "http(hub)")!;
    // The real `camblet-agent events` client, audit records only.
    const lines: string[] = [];
    const events = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        `--config=${REPO_ROOT}deno.json`,
        "-A",
        agentEntry(),
        "events",
        "--kind",
        "audit",
        "--output",
        "json",
        "--control-socket",
        agent.socket,
      ],
      stdout: "piped",
      stderr: "inherit",
      stdin: "null",
    }).spawn();
    const reading = collect(events.stdout, lines);
    const records = () => lines.map((l) => JSON.parse(l) as AuditRecord);
    const fileRecords = async () =>
      (await Deno.readTextFile(sink).catch(() => "")).split("\n").filter((l) => l)
        .map((l) => JSON.parse(l) as AuditRecord);
    const hits = (rs: AuditRecord[], rule: string, shell: number) =>
      rs.filter((r) => r.rule === rule && under(r.process, shell));
    try {
      await until(
        async () => (await audit()).sinks.stream.subscribers === 1,
        "the events client to connect",
      );

      await t.step("a real command triggers a default rule, reported once", async () => {
        const rule = "Read sensitive file untrusted";
        const shell = await sh("sleep 0.3; cat /etc/shadow > /dev/null; sleep 0.3");
        await until(() => hits(records(), rule, shell).length > 0, "the violation on events");
        await until(
          async () => hits(await fileRecords(), rule, shell).length > 0,
          "the violation in the file sink",
        );
        await new Promise((r) => setTimeout(r, 300)); // a duplicate would come by now
        const [r, ...more] = hits(records(), rule, shell);
        assert.equal(more.length, 0, "reported once on the stream");
        assert.equal(hits(await fileRecords(), rule, shell).length, 1, "once in the file sink");
        assert.equal(r!.kind, "audit");
        assert.equal(r!.event.path, "/etc/shadow");
        assert.equal(r!.process.name, "cat");
        assert.equal(r!.process.ancestors[0]?.pid, shell);
        assert.equal(r!.process.ancestors[0]?.name, "sh");
        assert.equal(r!.process.ancestors[1]?.pid, Deno.pid, "the test ran the shell");
        assert.ok(r!.labels.some((l) => /^process:name=(sh|cat)$/.test(l)), r!.labels.join(" "));
        assert.equal(r!.spiffe_id, "spiffe://acme.test/audited");
        const mode = (await Deno.stat(sink)).mode! & 0o777;
        assert.equal(mode, 0o600);
        await until(() => hits(posted, rule, shell).length > 0, "the violation at the webhook");
      });

      await t.step(
        "egress: a connect from a workload no policy gives egress, not from one with",
        async () => {
          const rule = "Outbound connection without egress policy";
          const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
          const port = listener.addr.port;
          try {
            // bash stays bash while its event is judged (a last command is exec'd in its pid).
            const without = await sh(
              `bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port}; sleep 0.3; :'`,
            );
            const withEgress = await sh(`sleep 0.2; curl -s -m 0.5 http://127.0.0.1:${port}/`);
            await until(() => hits(records(), rule, without).length > 0, "the egress violation");
            await new Promise((r) => setTimeout(r, 300));
            const [r, ...more] = hits(records(), rule, without);
            assert.equal(more.length, 0);
            assert.equal(r!.process.name, "bash");
            assert.equal(r!.event.addr?.port, port);
            assert.ok(r!.labels.includes("process:name=bash"), r!.labels.join(" "));
            assert.equal(hits(records(), rule, withEgress).length, 0, "curl has an egress policy");
          } finally {
            listener.close();
          }
        },
      );

      await t.step("status, the status CLI and /metrics show the audit", async () => {
        const a = await audit();
        assert.ok(a.programs.length >= 2, a.programs.join(","));
        assert.equal(a.rules.origin, "path");
        assert.match(a.rules.from, /agent\.audit\.rules/);
        assert.match(a.rules.id, /^sha256:[0-9a-f]{16}$/);
        assert.equal(a.rules.kind, "rego");
        assert.ok(a.events.seen > 0 && a.events.sent > 0 && a.events.judged > 0, JSON.stringify(a));
        assert.ok(a.events.filtered > 0, "the prefilter kept some syscalls in the kernel");
        assert.ok(a.prefilter.groups.length >= 10, JSON.stringify(a.prefilter.groups));
        assert.ok(a.prefilter.hostCgroups > 0, "the host's cgroups were scanned");
        assert.ok(a.prefilter.counters.keptOut.total > 0);
        assert.equal(a.workloads.pushed, 0, "no default rule is scoped to workloads");
        assert.ok((a.violations["Read sensitive file untrusted"] ?? 0) >= 1);
        assert.equal(a.sinks.file?.path, sink);
        assert.ok(a.sinks.webhook!.delivered >= 1, JSON.stringify(a.sinks.webhook));
        assert.ok(!a.sinks.webhook!.url.includes("s3cret"), "no query (tokens) in status");
        const cli = await runCli(["status", "--control-socket", agent.socket]);
        assert.equal(cli.code, 0, cli.stderr);
        assert.match(cli.stdout, /syscall audit\s+\d+ programs attached; rules from agent\.audit/);
        assert.match(cli.stdout, /audit events\s+seen \d+, filtered \d+/);
        assert.match(
          cli.stdout,
          /audit filter\s+\d+ syscalls in \d+ groups \(containers only: 1, workloads only: 0\); host cgroups \d+/,
        );
        assert.match(cli.stdout, /violations\s+.*Read sensitive file untrusted \d+/);
        const metrics = await (await control.get("/metrics")).text();
        assert.match(
          metrics,
          /camblet_audit_violations_total\{rule="Read sensitive file untrusted",severity="warning"\} \d+/,
        );
        assert.match(metrics, /camblet_audit_events_total\{stage="seen"\} \d+/);
      });

      await t.step(
        "a flood: every event sent or counted lost, the kernel link answers",
        async () => {
          await exclusive(async () => {
            const n = 20_000;
            const before = (await audit()).events;
            const latencies: number[] = [];
            const bad: string[] = [];
            let flooding = true;
            const asking = (async () => {
              while (flooding) {
                const r = await emu.augment();
                if (r.outcome !== "answered") bad.push(`${r.outcome} ${r.error ?? ""}`);
                latencies.push(r.latencyMs);
                await new Promise((res) => setTimeout(res, 5));
              }
            })();
            // Every connect passes the prefilter (the egress and miner rules); a refused one (no
            // listener) raises nothing.
            const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
            const port = closed.addr.port;
            closed.close();
            await sh(
              `bash -c 'i=0; while [ $i -lt ${n} ]; do : 2>/dev/null 3<>/dev/tcp/127.0.0.1/${port}; ` +
                `i=$((i+1)); done'`,
            );
            await until(
              async () => {
                const e = (await audit()).events;
                return e.judged + e.queueDropped >= e.sent;
              },
              "the judge to catch up",
              60_000,
            );
            flooding = false;
            await asking;
            const after = (await audit()).events;
            const sent = after.sent - before.sent;
            const lost = after.lost - before.lost;
            assert.ok(sent + lost >= n, `sent ${sent} + lost ${lost} covers the ${n} connects`);
            assert.deepEqual(bad, [], "every augment answered");
            assert.deepEqual(emu.violations, [], "no protocol violation on the kernel link");
            const max = Math.max(...latencies);
            assert.ok(latencies.length > 0 && max < 1000, `augment latencies up to ${max} ms`);
            console.error(
              `flood: ${n} connects, ${sent} sent, ${lost} lost, queue dropped ${
                after.queueDropped - before.queueDropped
              }; ${latencies.length} augments answered, max ${max.toFixed(1)} ms`,
            );
          });
        },
      );

      await t.step("a signed bundle with audit/ swaps the rules, no restart", async () => {
        server.serve = {
          kind: "bundle",
          body: await bundle("r2", { "audit/hosts.rego": HOSTS_RULE }),
        };
        await until(async () => (await audit()).rules.origin === "source", "the delivered rules");
        const a = await audit();
        assert.match(a.rules.from, /source http\(hub\) revision r2/);
        assert.deepEqual(a.rules.filter.syscalls, ["openat"]);
        assert.ok((await hub()).items.auditRules);
        const listed = await runCli([
          "--config",
          config,
          "sources",
          "--control-socket",
          agent.socket,
        ]);
        assert.equal(listed.code, 0, listed.stderr);
        assert.match(
          listed.stdout,
          /audit rules: rego sha256:[0-9a-f]{16} from http\(hub\) revision r2/,
        );
        const shell = await sh("sleep 0.3; cat /etc/hosts /etc/shadow > /dev/null; sleep 0.3");
        await until(() => hits(records(), "Read hosts", shell).length > 0, "the new rule");
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(hits(records(), "Read hosts", shell).length, 1);
        assert.equal(hits(records(), "Read sensitive file untrusted", shell).length, 0);
      });

      const inForce = (await audit()).rules.id;
      const bad: [string, () => Promise<Uint8Array>, "rejected" | "failing", RegExp][] = [
        [
          "Rego that does not compile",
          () => bundle("r3", { "audit/hosts.rego": HOSTS_RULE.replace("if {", "if {{") }),
          "rejected",
          /audit\/.*opa build.*hosts\.rego/s,
        ],
        [
          "a bad signature",
          () =>
            makeBundle({
              revision: "r4",
              files: { "policies/audited.yaml": POLICY, "audit/hosts.rego": HOSTS_RULE },
              sign,
              after: { "audit/hosts.rego": HOSTS_RULE.replace("notice", "critical") },
            }),
          "failing",
          /audit\/hosts\.rego/,
        ],
        [
          "a module without the filter entrypoint",
          async () => {
            const tmp = await Deno.makeTempDir();
            await Deno.writeTextFile(join(tmp, "hosts.rego"), HOSTS_RULE);
            const built = await opaBuildBundle(tmp, { entrypoints: [VIOLATIONS_ENTRYPOINT] });
            await Deno.remove(tmp, { recursive: true });
            return bundle("r5", { "audit/rules.tar.gz": built });
          },
          "rejected",
          /entrypoint "camblet\/audit\/filter" is missing/,
        ],
      ];
      for (const [what, make, state, reason] of bad) {
        await t.step(
          `${what}: refused, naming source and reason; the last good rules stay`,
          async () => {
            const failuresBefore = (await hub()).consecutiveFailures;
            server.serve = { kind: "bundle", body: await make() };
            await until(
              async () => {
                const h = await hub();
                return h.state === state && h.consecutiveFailures > failuresBefore;
              },
              `the source ${state}`,
            );
            const h = await hub();
            assert.equal(h.revision, "r2", "the source's last good revision stays");
            const problems = h.lastError!.problems.join("\n");
            assert.match(problems, /http\(hub\)/);
            assert.match(problems, reason);
            assert.equal((await audit()).rules.id, inForce);
            const shell = await sh("sleep 0.3; cat /etc/hosts > /dev/null; sleep 0.3");
            await until(() => hits(records(), "Read hosts", shell).length > 0, "the rule in force");
          },
        );
      }
    } finally {
      try {
        events.kill("SIGTERM");
      } catch {
        // ended
      }
      await reading.catch(() => {});
      await events.status;
      control.close();
      assert.equal(await agent.stop(), 0, agent.log());
      await emu.close();
      await server.close();
      await webhook.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "audit in the daemon, SIGHUP: the rules path re-read (new rules swapped, bad ones refused and the last good kept), disabled by config",
  ignore: skip(why),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "camblet-daemon-audit-hup-" });
    const rules = join(dir, "rules");
    await Deno.mkdir(rules);
    const rule = (name: string) => HOSTS_RULE.replaceAll("Read hosts", name);
    await Deno.writeTextFile(join(rules, "hosts.rego"), rule("Hosts A"));
    // Scoped to workloads: the kernel sends its opens only from cgroups the daemon attested and
    // pushed (a process named sh in it).
    await Deno.writeTextFile(
      join(rules, "workload.rego"),
      `package camblet.audit
filter contains {"rule": "Hosts W", "syscalls": ["openat"], "prefixes": ["/etc/hosts"], "workloads": [["process:name=sh"]]}
violations contains {"rule": "Hosts W", "severity": "notice", "output": "w"} if input.path == "/etc/hosts"
`,
    );
    const config = join(dir, "config.yaml");
    const write = (enabled: boolean) =>
      Deno.writeTextFile(
        config,
        JSON.stringify({ agent: { audit: { enabled, rules, opa: peerPath("opa") } } }),
      );
    await write(true);
    const emu = await KernelEmulator.open();
    const agent = await startAgent(emu, { args: ["--config", config] });
    const control = new ControlClient(agent.socket);
    const audit = async () => (await control.json<AgentStatus>("/v1/status")).audit!;
    const running = async () => {
      const a = await audit();
      assert.equal(a.state, "running", JSON.stringify(a));
      return a as Extract<typeof a, { state: "running" }>;
    };
    const seen = async (name: string) => {
      await sh("sleep 0.2; cat /etc/hosts > /dev/null; sleep 0.2");
      await until(
        async () => ((await running()).violations[name] ?? 0) > 0,
        `a "${name}" violation`,
      );
    };
    try {
      await seen("Hosts A");
      // The sweep (every 5 s) attests the sleeping shell: its cgroup is pushed, cat's open is sent.
      const w = (await running()).prefilter.groups.find((g) => g.rules.includes("Hosts W"));
      assert.equal(w?.cgroups, "workloads", JSON.stringify(w));
      await sh("sleep 6; cat /etc/hosts > /dev/null; sleep 0.2");
      await until(async () => ((await running()).violations["Hosts W"] ?? 0) > 0, "Hosts W");
      assert.ok((await running()).workloads.pushed > 0);
      const first = (await running()).rules.id;
      await Deno.writeTextFile(join(rules, "hosts.rego"), rule("Hosts B"));
      agent.kill("SIGHUP");
      await until(async () => (await running()).rules.id !== first, "the new rules");
      await seen("Hosts B");
      const second = (await running()).rules.id;
      await Deno.writeTextFile(join(rules, "hosts.rego"), rule("Hosts C").replace("if {", "if {{"));
      agent.kill("SIGHUP");
      await until(async () => (await running()).lastError !== undefined, "the refusal");
      const a = await running();
      assert.equal(a.rules.id, second, "the last good rules stay");
      assert.match(
        a.lastError!.message,
        /agent\.audit\.rules .*hosts\.rego:\d+: rego_parse_error/s,
      );
      await agent.waitForLog(/Audit rules refused; the last good rules stay in force/);
      await seen("Hosts B");
      await write(false);
      agent.kill("SIGHUP");
      await until(async () => (await audit()).state === "off", "the audit to stop");
      assert.ok(emu.violations.length === 0, emu.violations.join("\n"));
    } finally {
      control.close();
      assert.equal(await agent.stop(), 0, agent.log());
      await emu.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
