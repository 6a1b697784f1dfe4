/**
 * Fail-closed steering: with `pinDir` the links outlive the agent, so while no agent serves,
 * protected destinations are refused instead of reached in plaintext. Needs root, libbpf1,
 * cgroup v2 and a bpf filesystem (mounted by the test on a temporary directory).
 */
import assert from "node:assert/strict";
import { skip as skipped } from "../_skip.ts";
import {
  createHosts,
  defaultConfigs,
  destroyHosts,
  type Hosts,
  httpServer,
  startAgent,
} from "./_hosts.ts";
import { HOST_A, netnsSkipReason } from "./_netns.ts";

const skip = await netnsSkipReason();

async function sh(cmd: string[]): Promise<{ ok: boolean; err: string }> {
  const o = await new Deno.Command(cmd[0]!, { args: cmd.slice(1), stdout: "null", stderr: "piped" })
    .output();
  return { ok: o.success, err: new TextDecoder().decode(o.stderr) };
}

Deno.test({
  name: "fail-closed: pinned steering refuses protected destinations while no agent serves",
  ignore: skipped(skip),
  async fn(t) {
    let h: Hosts | undefined;
    let bpffs: string | undefined;
    try {
      h = await createHosts("f");
      const hosts = h;
      bpffs = `${h.pki.dir}/bpffs`;
      await Deno.mkdir(bpffs);
      const m = await sh(["mount", "-t", "bpf", "bpf", bpffs]);
      assert.ok(m.ok, `mount bpffs: ${m.err}`);
      const www = `${h.pki.dir}/www`;
      await Deno.mkdir(www);
      await Deno.writeTextFile(`${www}/hello.txt`, "fail-closed\n");
      const app = await httpServer(h, 8000, www);
      const cfg = defaultConfigs(h);
      const cfgA = { ...cfg.a, pinDir: `${bpffs}/camblet-a` };
      const cfgB = { ...cfg.b, pinDir: `${bpffs}/camblet-b` };
      h.agentA = await startAgent(h, h.pair.a, cfgA, "agent-a");
      h.agentB = await startAgent(h, h.pair.b, cfgB, "agent-b");
      const curl = () =>
        hosts.pair.exec(hosts.pair.b, [
          "curl",
          "-sS",
          "-m",
          "5",
          `http://${HOST_A.ip4}:8000/hello.txt`,
        ]);

      await t.step("with the agent serving: mTLS as usual", async () => {
        const r = await curl();
        assert.equal(r.stdout.trim(), "fail-closed", r.stderr);
        assert.ok((await Deno.stat(`${bpffs}/camblet-b/camblet_connect4`)).isFile);
      });

      await t.step("agent killed: the connection is refused, not sent in plaintext", async () => {
        await hosts.agentB!.stop("SIGKILL");
        const r = await curl();
        assert.equal(r.code, 7, `curl must fail to connect: ${r.stderr}`);
      });

      await t.step("agent restarted on the same pins: served again", async () => {
        hosts.agentB = await startAgent(hosts, hosts.pair.b, cfgB, "agent-b2");
        const r = await curl();
        assert.equal(r.stdout.trim(), "fail-closed", r.stderr);
      });

      await t.step(
        "server agent killed: connections to the protected port are refused",
        async () => {
          await hosts.agentA!.stop("SIGKILL");
          const requests = app.stderr.split("GET /hello.txt").length;
          const r = await hosts.pair.exec(hosts.pair.b, [
            "curl",
            "-sS",
            "-m",
            "2",
            `http://${HOST_A.ip4}:8000/hello.txt`,
          ]); // deno-fmt-ignore
          assert.notEqual(r.code, 0, "nothing may answer");
          assert.equal(
            app.stderr.split("GET /hello.txt").length,
            requests,
            "nothing reached the app",
          );
          hosts.agentA = await startAgent(hosts, hosts.pair.a, cfgA, "agent-a2");
          assert.equal((await curl()).stdout.trim(), "fail-closed");
        },
      );

      await t.step("orderly stop keeps refusing; removing the pins opens the path", async () => {
        await hosts.agentB!.stop();
        assert.equal((await curl()).code, 7);
        await hosts.agentA!.stop();
        const u = await sh(["umount", bpffs!]);
        assert.ok(u.ok, u.err);
        bpffs = undefined;
        const r = await curl();
        assert.equal(r.stdout.trim(), "fail-closed", `direct after unpinning: ${r.stderr}`);
      });
    } finally {
      if (bpffs) await sh(["umount", bpffs]);
      await destroyHosts(h);
    }
  },
});
