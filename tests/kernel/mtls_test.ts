/**
 * Real-module tests: the agent drives the real camblet-driver on /dev/camblet, and the kernel
 * protects an unmodified HTTP server and client with mTLS using our certificates. Skipped unless
 * /dev/camblet exists and the test runs as root (see README.md: a Lima VM is the easy way).
 */
import assert from "node:assert/strict";
import { skip } from "../_skip.ts";
import { startAgentOnDevice } from "./_agent.ts";

const DEVICE = Deno.env.get("CAMBLET_DEVICE") ?? "/dev/camblet";
const available = (() => {
  try {
    return Deno.uid() === 0 && Deno.statSync(DEVICE).isCharDevice === true;
  } catch {
    return false;
  }
})();

async function run(
  cmd: string,
  args: string[],
  timeoutMs = 20_000,
): Promise<{ code: number; out: string; err: string }> {
  const c = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  });
  const o = await c.output();
  return {
    code: o.code,
    out: new TextDecoder().decode(o.stdout),
    err: new TextDecoder().decode(o.stderr),
  };
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

Deno.test({
  name: "the real module gives curl and python3 mTLS with the agent's certificates",
  ignore: skip(!available && `needs root and the camblet-driver module (${DEVICE})`),
  sanitizeResources: false,
  fn: async (t) => {
    const agent = await startAgentOnDevice(DEVICE);
    // The quickstart policies: python3 serves :8000 for curl (web), curl presents "curl".
    const server = new Deno.Command("/usr/bin/python3", {
      args: ["-m", "http.server", "8000", "--bind", "127.0.0.1"],
      cwd: agent.dir,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      await Deno.writeTextFile(`${agent.dir}/hello.txt`, "hello over kernel mTLS\n");
      await waitForPort(8000);

      await t.step("curl gets the page through the kernel's mTLS", async () => {
        const r = await run("curl", ["-sS", "--max-time", "10", "http://127.0.0.1:8000/hello.txt"]);
        assert.equal(r.code, 0, r.err);
        assert.equal(r.out, "hello over kernel mTLS\n");
      });

      await t.step(
        "a peer without policy sees the server's SPIFFE certificate from our CA",
        async () => {
          const r = await run("openssl", ["s_client", "-connect", "127.0.0.1:8000", "-showcerts"]);
          const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.out)
            ?.[0];
          assert.ok(pem, `no certificate presented:\n${r.out}\n${r.err}`);
          await Deno.writeTextFile(`${agent.dir}/server.pem`, pem + "\n");
          const text = await run("openssl", [
            "x509",
            "-in",
            `${agent.dir}/server.pem`,
            "-noout",
            "-ext",
            "subjectAltName",
          ]);
          assert.match(text.out, /URI:spiffe:\/\/acme\.test\/web/);
          const verify = await run("openssl", [
            "verify",
            "-CAfile",
            `${agent.dir}/public_ca.crt`,
            `${agent.dir}/server.pem`,
          ]);
          assert.equal(verify.code, 0, verify.out + verify.err);
        },
      );

      await t.step("the agent answered every kernel request in time", async () => {
        const s = await agent.status();
        assert.equal(s.kernel?.deadlineMisses, 0);
        assert.ok(
          (s.kernel?.requests["csr_sign"]?.["signed"] ?? 0) >= 2,
          JSON.stringify(s.kernel?.requests),
        );
        assert.ok(
          (s.kernel?.requests["augment"]?.["ok"] ?? 0) >= 2,
          JSON.stringify(s.kernel?.requests),
        );
      });
    } finally {
      server.kill();
      await server.status;
      await server.stderr.cancel();
      assert.equal(await agent.stop(), 0, agent.log());
    }
  },
});
