/**
 * `camblet-agent --ca vault` as users run it: a subprocess on the kernel emulator with only
 * VAULT_ADDR and VAULT_TOKEN set, against a real Vault with the default mount `pki`.
 */
import assert from "node:assert/strict";
import { skip } from "../../../tests/_skip.ts";
import { peerMissing } from "../../../tests/peers/ensure_peer.ts";
import { KernelEmulator } from "../../../driver/emulator/kernel_emulator.ts";
import { taskOf } from "../../../driver/emulator/tasks.ts";
import { startAgent } from "../../../tests/fakes/agent_process.ts";
import { runCli } from "../../../tests/cli/_run.ts";
import { startPkiVault } from "./_test_vault.ts";
import { until } from "../../../tests/fakes/until.ts";

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

// Needs a peer that `deno task peers` builds; tests never build one.
const ignore = skip(peerMissing("vault"));

Deno.test("camblet-agent --ca vault with only VAULT_ADDR and VAULT_TOKEN", {
  ignore,
}, async (t) => {
  const { vault, root } = await startPkiVault();
  const emu = await KernelEmulator.open({ serializeCsrSign: false });
  const python = new Deno.Command("/usr/bin/python3", {
    args: ["-c", "import time; time.sleep(120)"],
  }).spawn();
  try {
    await t.step("without VAULT_TOKEN the agent exits 1 and says what to set", async () => {
      const r = await runCli(["--ca", "vault", "--kernel-module-device", emu.path], {
        env: { VAULT_ADDR: vault.address, VAULT_TOKEN: "" },
      });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /plugins\.ca\.vault\.auth\.token: required: set VAULT_TOKEN/);
    });

    await t.step(
      "issues leaves chained to Vault's root through the agent's intermediate",
      async () => {
        const port = freePort();
        const agent = await startAgent(emu, {
          args: ["--ca", "vault", "--metrics-address", `127.0.0.1:${port}`],
          env: { VAULT_ADDR: vault.address, VAULT_TOKEN: vault.rootToken },
        });
        try {
          await until(
            () => Deno.readTextFileSync(`/proc/${python.pid}/comm`).trim() === "python3",
            "python3",
          );
          const task = taskOf(python.pid);
          const ok = await emu.csrSign("spiffe://acme.test/web", { ttl: "3600s", task });
          assert.equal(ok.outcome, "issued", ok.check?.problems.join("; "));
          assert.match(ok.check!.leaf!.issuer, /^CN=Camblet agent CA /);
          const answer = JSON.parse(ok.answer!) as {
            chain: { raw: string }[];
            trust_anchors: { rawSubject: string }[];
          };
          assert.equal(answer.chain.length, 1, "the agent's intermediate");
          assert.equal(answer.trust_anchors.length, 1, "Vault's root");
          assert.ok(root.certificate.includes("BEGIN CERTIFICATE"));
          const no = await emu.csrSign("spiffe://acme.test/curl", { ttl: "3600s", task });
          assert.equal(no.outcome, "refused");
          const log = agent.log();
          assert.match(
            log,
            /"Connected to Vault" .*mount=pki .*mode=intermediate .*fromEnv=VAULT_ADDR,VAULT_TOKEN/,
          );
          assert.match(log, /Got an intermediate CA from Vault/);
          assert.ok(!log.includes(vault.rootToken), "the token is never logged");
          const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          assert.match(metrics, /^camblet_ca_upstream_up\{ca="vault"\} 1$/m);
          const left = Number(
            /^camblet_ca_signer_expiry_seconds\{ca="vault"\} (\d+)$/m.exec(metrics)?.[1],
          );
          assert.ok(left > 71 * 3600 && left <= 72 * 3600, `intermediate seconds left: ${left}`);
          emu.assertHealthy();
        } finally {
          assert.equal(await agent.stop(), 0);
        }
      },
    );
  } finally {
    python.kill();
    await python.status;
    await emu.close();
    await vault.stop();
  }
});
