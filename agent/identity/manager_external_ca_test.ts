/**
 * The identity manager in front of an external CA process that hangs or dies: the kernel gets a
 * refusal certificate soon after the budget, with the reason audited and counted.
 */
import assert from "node:assert/strict";
import { IdentityManager } from "./manager.ts";
import { AuditLog } from "./audit.ts";
import { MetricsRegistry } from "../../plugins/sdk/metrics.ts";
import { checkKernelAnswer } from "../../driver/answer_check.ts";
import { FAKE_PLUGIN, loadExternalCa } from "../../tests/fakes/ca_plugins.ts";
import { captureCsrSign, capturePayloads, taskLabels } from "../../tests/fakes/identity_capture.ts";

Deno.test("identity manager with a hanging or dying external CA: refusals, no crash", async () => {
  const payloads = await capturePayloads();
  const request = await captureCsrSign("python3");
  for (
    const [mode, reason] of [["hang-sign", "ca_timeout"], ["die-on-sign", "ca_error"]] as const
  ) {
    const { ca, plugins } = await loadExternalCa(FAKE_PLUGIN, {
      args: [`--mode=${mode}`],
      callTimeout: "2s",
      startTimeout: "30s",
      restartBackoff: "50ms",
    });
    try {
      const metrics = new MetricsRegistry();
      const manager = await IdentityManager.create({
        ca,
        trustDomain: "acme.test",
        payloads: () => payloads,
        labelsFor: (task) => Promise.resolve(taskLabels(task)),
        defaultCertTtlMs: 86_400_000,
        budgetMs: 800,
        audit: new AuditLog(),
        metrics,
      });
      const started = performance.now();
      const answer = await manager.signForKernel({
        id: request.id,
        task: request.task_context,
        data: request.data,
      });
      assert.ok(performance.now() - started < 1300, "answered soon after the budget");
      const check = await checkKernelAnswer(answer);
      assert.deepEqual(check.problems, []);
      assert.equal(check.trusted, false);
      const last = manager.audit.entries().at(-1)!;
      assert.equal(last.reason, reason, mode);
      if (reason === "ca_error") {
        assert.match(last.detail!, /^ca\(ext-ca\): Plugin exited with code 3/);
      }
      assert.equal(
        metrics.counter("camblet_csr_sign_total", "").get({ result: "refused", reason }),
        1,
      );
    } finally {
      await plugins.dispose();
    }
  }
});
