import assert from "node:assert/strict";
import { csrAnswerProblem } from "../../driver/answers.ts";
import { syntheticTask } from "../../driver/emulator/tasks.ts";
import { readCertificateFacts, readCsrDer } from "../../plugins/sdk/leaf_der.ts";
import { parseCsr } from "../../plugins/sdk/csr.ts";
import { fromBase64 } from "../../plugins/sdk/pem.ts";
import { pki } from "../../tests/fakes/identity_capture.ts";
import { RefusalIssuer } from "../identity/refusal.ts";
import { refusalSetup } from "./kernel_worker.ts";

Deno.test("kernel worker refusals: for the CSR's key, prepared once, and in time without preparing", async () => {
  const material = await (await RefusalIssuer.shared()).exportMaterial();
  const setup = await refusalSetup({ anchors: [], refusal: material });
  const csr = await pki("csr-web.pem");
  const spki = readCsrDer(new Uint8Array(parseCsr(csr).rawData)).spki;
  const task = syntheticTask(1);
  // Asked at the deadline with nothing prepared (the synchronous signer loads in the background).
  await new Promise((r) => setTimeout(r, 500));
  const answer = setup.refusal(task, { csr });
  assert.equal(csrAnswerProblem(answer), undefined);
  const leaf = fromBase64(JSON.parse(answer).certificate.raw);
  assert.deepEqual(readCertificateFacts(leaf).spki, spki, "the refusal is for the CSR's key");
  setup.prepareRefusal!(task, { csr });
  assert.equal(setup.refusal(task, { csr }), answer, "the same prepared answer serves again");
  const unreadable = setup.refusal(task, { csr: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n" });
  assert.equal(csrAnswerProblem(unreadable), undefined, "an unreadable CSR still gets a refusal");
});
