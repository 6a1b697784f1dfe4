// `camblet-agent audit test` (offline, for rule authors) and `audit capture --record` feeding it.
import assert from "node:assert/strict";
import { skip } from "../_skip.ts";
import { runCli } from "../cli/_run.ts";
import { peerPath } from "../peers/ensure_peer.ts";
import { buildRules, captureMissing, opaMissing, RULES_DIR } from "./_rules.ts";

const shadowRead = {
  time: "2026-12-03T10:00:00.000Z",
  syscall: "openat",
  ret: 3,
  path: "/etc/shadow",
  path2: "",
  flags: 0,
  mode: 0,
  argv: [],
  exe_name: "",
  addr: null,
  ptrace: null,
  mount: null,
  proc: {
    pid: 40,
    tid: 40,
    ppid: 30,
    name: "cat",
    exe: "/usr/bin/cat",
    cwd: "/",
    uid: 0,
    gid: 0,
    cmdline: "cat /etc/shadow",
  },
  ancestors: [{ pid: 30, name: "sh", exe: "/usr/bin/sh" }],
  container: { id: "", labels: {} },
  cgroup_id: "1",
  labels: ["process:name=cat"],
  spiffe_id: "spiffe://example.org/cat",
};

Deno.test({
  name: "audit test: judges recorded inputs with a bundle; a bad line is named by file and line",
  ignore: skip(opaMissing()),
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeFile(`${dir}/rules.tar.gz`, await buildRules());
      const trusted = { ...shadowRead, proc: { ...shadowRead.proc, name: "sshd" } };
      await Deno.writeTextFile(
        `${dir}/events.jsonl`,
        [shadowRead, trusted].map((e) => JSON.stringify(e)).join("\n") + "\n",
      );
      const ok = await runCli([
        "audit",
        "test",
        `${dir}/rules.tar.gz`,
        `${dir}/events.jsonl`,
        "-o",
        "json",
      ]);
      assert.equal(ok.code, 0, ok.stderr);
      const recs = ok.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(recs.length, 1, "the trusted reader (sshd) is not reported");
      assert.equal(recs[0].rule, "Read sensitive file untrusted");
      assert.equal(recs[0].severity, "warning");
      assert.equal(recs[0].spiffe_id, "spiffe://example.org/cat");
      assert.deepEqual(recs[0].process.ancestors.map((a: { name: string }) => a.name), ["sh"]);
      assert.match(ok.stderr, /2 events, 1 violations/);

      await Deno.writeTextFile(
        `${dir}/bad.jsonl`,
        `${JSON.stringify(shadowRead)}\n{"syscall": 1}\nnope\n`,
      );
      const bad = await runCli(["audit", "test", `${dir}/rules.tar.gz`, `${dir}/bad.jsonl`]);
      assert.equal(bad.code, 1);
      assert.match(
        bad.stdout,
        /WARNING Read sensitive file untrusted: .* chain=cat\[40\] < sh\[30\]/,
      );
      assert.match(bad.stderr, /bad\.jsonl:2: field "syscall" must be a string/);
      assert.match(bad.stderr, /bad\.jsonl:3: not JSON/);

      // A directory of Rego is compiled with the real opa.
      const fromDir = await runCli([
        "audit",
        "test",
        RULES_DIR,
        `${dir}/events.jsonl`,
        "--opa",
        peerPath("opa"),
      ]);
      assert.equal(fromDir.code, 0, fromDir.stderr);
      assert.match(fromDir.stdout, /Read sensitive file untrusted/);

      // Rules whose filter names a syscall the capture does not have: refused, naming the rule.
      await Deno.mkdir(`${dir}/badrules`);
      await Deno.writeTextFile(
        `${dir}/badrules/r.rego`,
        `package camblet.audit\nfilter contains {"rule": "Fork bomb", "syscalls": ["fork"]}\nviolations contains {"rule": "x", "severity": "notice", "output": "x"} if input.x\n`,
      );
      const refused = await runCli([
        "audit",
        "test",
        `${dir}/badrules`,
        `${dir}/events.jsonl`,
        "--opa",
        peerPath("opa"),
      ]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /rule "Fork bomb": syscall "fork" is not captured/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "audit capture --record: a real violation is printed, and audit test of the recording finds it again",
  ignore: skip(captureMissing()),
  async fn() {
    const dir = await Deno.makeTempDir();
    const posted: string[] = [];
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      posted.push(...(await req.text()).trim().split("\n"));
      return new Response(null, { status: 204 });
    });
    try {
      await Deno.writeFile(`${dir}/rules.tar.gz`, await buildRules());
      const cli = runCli([
        "audit",
        "capture",
        `${dir}/rules.tar.gz`,
        "--record",
        `${dir}/rec.jsonl`,
        "--log-file",
        `${dir}/audit.log`,
        "--webhook",
        `http://127.0.0.1:${server.addr.port}/audit`,
        "--duration",
        "6",
      ]);
      // Wait for the programs to attach (the prefilter line), then read /etc/shadow.
      for (let i = 0; i < 100; i++) {
        await new Promise((r) => setTimeout(r, 100));
        try {
          if ((await Deno.stat(`${dir}/rec.jsonl`)).isFile) break;
        } catch {
          // not yet
        }
      }
      await new Promise((r) => setTimeout(r, 1500));
      // Capture is host-wide and other test files run beside this one: only our cats count. A
      // busy host can overflow the ring buffer (lost events are counted, not hidden), so three
      // shells, each reported at most once, and at least one of them must come through.
      const shells: number[] = [];
      for (let i = 0; i < 3; i++) {
        const sh = new Deno.Command("sh", { args: ["-c", "cat /etc/shadow >/dev/null"] }).spawn();
        await sh.status;
        shells.push(sh.pid);
        await new Promise((r) => setTimeout(r, 300));
      }
      type Rec = { rule: string; process: { pid: number; ppid: number; name: string } };
      const shellOf = (r: Rec) => shells.find((p) => r.process.pid === p || r.process.ppid === p);
      const ours = (r: Rec) =>
        r.rule === "Read sensitive file untrusted" && r.process.name === "cat" &&
        shellOf(r) !== undefined;
      const res = await cli;
      assert.equal(res.code, 0, res.stderr);
      const recs = res.stdout.trim().split("\n").filter((l) => l).map((l) => JSON.parse(l))
        .filter(ours);
      assert.ok(recs.length >= 1, `none of ${shells} was reported:\n${res.stderr}`);
      assert.equal(new Set(recs.map(shellOf)).size, recs.length, "each shell reported once");
      for (const r of recs) assert.equal(r.event.path, "/etc/shadow");
      assert.match(res.stderr, /"lost":\d+/, "lost events are counted");
      const logged = (await Deno.readTextFile(`${dir}/audit.log`)).trim().split("\n").map((l) =>
        JSON.parse(l)
      ).filter(ours);
      assert.deepEqual(logged, recs, "the file sink has the same record");
      const hooked = posted.map((l) => JSON.parse(l)).filter(ours);
      assert.deepEqual(hooked, recs, "the webhook got the same record");
      assert.match(res.stderr, /webhook delivered \d+, dropped 0/);
      const again = await runCli([
        "audit",
        "test",
        `${dir}/rules.tar.gz`,
        `${dir}/rec.jsonl`,
        "-o",
        "json",
      ]);
      assert.equal(again.code, 0, again.stderr);
      const found = again.stdout.trim().split("\n").map((l) => JSON.parse(l)).filter(ours);
      assert.deepEqual(
        found.map((r: Rec) => r.process.pid),
        recs.map((r: Rec) => r.process.pid),
        "audit test of the recording finds the same violations",
      );
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
