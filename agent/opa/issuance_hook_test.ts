import assert from "node:assert/strict";
import { skip } from "../../tests/_skip.ts";
import { peerMissing } from "../../tests/peers/ensure_peer.ts";
import { opaBuildWasm, opaTest } from "../../tests/peers/opa.ts";
import { DEFAULT_ENTRYPOINT, type IssuanceInput, loadIssuanceHook } from "./issuance_hook.ts";

// Needs a peer that `deno task peers` builds; tests never build one.
const ignore = skip(peerMissing("opa"));

const REGO = new URL("../../policies/rego/", import.meta.url).pathname;

/** Compiles the Rego in `dir` (test files left out) with the real opa CLI; returns policy.wasm. */
async function buildWasm(entrypoint: string, dir = REGO): Promise<Uint8Array<ArrayBuffer>> {
  return await opaBuildWasm(dir, entrypoint) as Uint8Array<ArrayBuffer>;
}

const input: IssuanceInput = {
  spiffe_id: "spiffe://acme.test/web",
  trust_domain: "acme.test",
  dns_names: [],
  ttl_seconds: 3600,
  task: { uid: 1000, gid: 1000, pid: 42, command_name: "python3" },
  labels: ["process:name=python3"],
};

Deno.test("opa-compiled issuance policy allows and denies with reasons", {
  ignore,
}, async (t) => {
  const wasm = await buildWasm(DEFAULT_ENTRYPOINT);
  const hook = await loadIssuanceHook(wasm, {
    data: { max_ttl_seconds: 7200, reserved_paths: { "system/": [0] } },
  });

  await t.step("an ordinary request is allowed", () => {
    assert.deepEqual(hook.decide(input), { allow: true, reasons: [] });
  });
  await t.step("a TTL above data.max_ttl_seconds is denied", () => {
    assert.deepEqual(hook.decide({ ...input, ttl_seconds: 86400 }), {
      allow: false,
      reasons: ["ttl 86400s is above the issuance maximum of 7200s"],
    });
  });
  await t.step("a reserved path is denied to other uids and allowed to root", () => {
    const req = { ...input, spiffe_id: "spiffe://acme.test/system/dns" };
    const d = hook.decide(req);
    assert.equal(d.allow, false);
    assert.match(d.reasons[0]!, /reserved for uids 0, requested by uid 1000/);
    assert.equal(hook.decide({ ...req, task: { ...req.task, uid: 0 } }).allow, true);
  });
  await t.step("every reason is reported", () => {
    const d = hook.decide({ ...input, ttl_seconds: 10_000, dns_names: ["db.internal"] });
    assert.equal(d.allow, false);
    assert.equal(d.reasons.length, 2);
  });
});

Deno.test("a module without the entrypoint is refused when loaded", {
  ignore,
}, async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/other.rego`, "package other\n\nallow := true\n");
    const wasm = await buildWasm("other/allow", dir);
    await assert.rejects(
      loadIssuanceHook(wasm),
      /entrypoint "camblet\/issuance\/decision" is not in the wasm module \(it has: other\/allow\)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a rule that is not a decision fails closed", { ignore }, async () => {
  const wasm = await buildWasm("camblet/issuance/path");
  const hook = await loadIssuanceHook(wasm, { entrypoint: "camblet/issuance/path" });
  const d = hook.decide(input);
  assert.equal(d.allow, false);
  assert.match(d.reasons[0]!, /returned "web", not a decision/);
});

Deno.test("policies/rego passes opa test", { ignore }, async () => {
  const r = await opaTest([REGO]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /PASS: \d+\/\d+/);
});
