import { caConformance } from "../conformance.ts";
import { SelfSignedCa } from "./self_signed_ca.ts";
import { parseSelfSignedConfig } from "./config.ts";
import { getLogger } from "@logtape/logtape";
import assert from "node:assert/strict";
import { runCli } from "../../../tests/cli/_run.ts";
import { parseCsr } from "../../sdk/csr.ts";
import { x509 } from "../../sdk/x509.ts";
import { type Clock, systemClock } from "../../types.ts";
import { pki } from "../../../tests/fakes/identity_capture.ts";
import { writeGoCaPem } from "../../../tests/fakes/ca_go_fixture.ts";

for (const intermediate of [false, true]) {
  caConformance(`self-signed${intermediate ? " with intermediate" : ""}`, {
    async setup(clock) {
      const dir = await Deno.makeTempDir({ prefix: "self-signed-" });
      const parsed = parseSelfSignedConfig({
        caPemPath: `${dir}/ca.pem`,
        intermediate,
        maxCertTtl: "2h",
        watch: false,
      });
      if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
      const ca = await SelfSignedCa.open(parsed.value, {
        clock,
        log: getLogger(["camblet", "test"]),
        maintenanceIntervalMs: 0,
      });
      const dispose = ca.dispose.bind(ca);
      ca.dispose = async () => {
        await dispose();
        await Deno.remove(dir, { recursive: true });
      };
      return { ca, clock };
    },
  });
}

const kernelCsr = async () => new Uint8Array(parseCsr(await pki("csr-web.pem")).rawData);

async function openCa(caPemPath: string, clock: Clock, extra: Record<string, unknown> = {}) {
  const parsed = parseSelfSignedConfig({ caPemPath, maxCertTtl: "2h", watch: false, ...extra });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return await SelfSignedCa.open(parsed.value, {
    clock,
    log: getLogger(["camblet", "test"]),
    maintenanceIntervalMs: 0,
  });
}

Deno.test("self-signed CA at run time", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "self-signed-rt-" });
  const signal = new AbortController().signal;
  try {
    await t.step("a Camblet Go ca.pem loads and signs the kernel CSR", async () => {
      const { path, rootPem } = await writeGoCaPem(await Deno.makeTempDir({ dir }));
      const ca = await openCa(path, systemClock);
      try {
        const r = await ca.sign({
          csr: await kernelCsr(),
          spiffeId: "spiffe://acme.test/web",
          dnsNames: [],
          ttlMs: 3_600_000,
        }, signal);
        const leaf = new x509.X509Certificate(r.certificate.slice().buffer as ArrayBuffer);
        const root = new x509.X509Certificate(rootPem);
        assert.ok(await leaf.verify({ publicKey: root.publicKey, signatureOnly: true }));
        assert.deepEqual(r.trustAnchors.length, 1);
      } finally {
        await ca.dispose();
      }
    });

    await t.step(
      "rotate() without restart: new leaves chain to the new root, both roots trusted",
      async () => {
        let now = Date.UTC(2026, 10, 22, 5);
        const clock = { now: () => now };
        const ca = await openCa(`${dir}/ca.pem`, clock);
        try {
          const before = await ca.sign({
            csr: await kernelCsr(),
            spiffeId: "spiffe://acme.test/web",
            dnsNames: [],
            ttlMs: 600_000,
          }, signal);
          now += 60_000;
          const summary = await ca.rotate("root");
          assert.equal(summary.retired.length, 1);
          assert.equal(
            summary.retired[0]!.keepUntil,
            new Date(now - 60_000 + 600_000).toISOString(),
            "kept until the last leaf expires",
          );
          const after = await ca.sign({
            csr: await kernelCsr(),
            spiffeId: "spiffe://acme.test/web",
            dnsNames: [],
            ttlMs: 600_000,
          }, signal);
          const bundle = (await ca.trustBundle()).map((d) =>
            new x509.X509Certificate(d.slice().buffer as ArrayBuffer)
          );
          assert.equal(bundle.length, 2);
          const verifies = async (der: Uint8Array) => {
            const leaf = new x509.X509Certificate(der.slice().buffer as ArrayBuffer);
            const ok = await Promise.all(
              bundle.map((r) => leaf.verify({ publicKey: r.publicKey, signatureOnly: true })),
            );
            return ok.indexOf(true);
          };
          const oldIdx = await verifies(before.certificate);
          const newIdx = await verifies(after.certificate);
          assert.ok(oldIdx >= 0 && newIdx >= 0 && oldIdx !== newIdx);
          now += 600_000;
          await ca.maintain();
          assert.equal((await ca.trustBundle()).length, 1, "dropped once its last leaf expired");
        } finally {
          await ca.dispose();
        }
      },
    );

    await t.step("health: ok while the signer is valid, not ok once it expired", async () => {
      let now = Date.now();
      const ca = await openCa(`${dir}/health/ca.pem`, { now: () => now });
      try {
        assert.deepEqual(ca.health(), { ok: true });
        // No maintenance runs here, as when rotations keep failing.
        now += 11 * 365 * 86_400_000; // past the default 10-year root
        const h = ca.health();
        assert.equal(h.ok, false);
        assert.match(h.message!, /^The CA's signing certificate ".*" expired at \d{4}-/);
      } finally {
        await ca.dispose();
      }
    });

    await t.step(
      "`ca rotate` by another process is picked up by the running CA (watch)",
      async () => {
        await Deno.mkdir(`${dir}/watch`);
        const caPemPath = `${dir}/watch/ca.pem`;
        const ca = await openCa(caPemPath, systemClock, { watch: true });
        try {
          const rootBefore = ca.summary().root.serial;
          const cli = await runCli(["ca", "rotate", "--ca-pem-path", caPemPath]);
          assert.equal(cli.code, 0, cli.stderr);
          const end = Date.now() + 10_000;
          while (ca.summary().root.serial === rootBefore && Date.now() < end) {
            await new Promise((r) => setTimeout(r, 50));
          }
          assert.notEqual(ca.summary().root.serial, rootBefore);
          assert.equal((await ca.trustBundle()).length, 2);
        } finally {
          await ca.dispose();
        }
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("public_ca.crt is brought up to date only once the agent uses the CA", async () => {
  const dir = await Deno.makeTempDir({ prefix: "self-signed-bundle-" });
  try {
    const path = `${dir}/ca.pem`;
    const first = await openCa(path, systemClock);
    await first.dispose();
    assert.ok(Deno.statSync(`${dir}/public_ca.crt`).isFile, "a new CA writes its bundle at once");
    await Deno.remove(`${dir}/public_ca.crt`);
    const ca = await openCa(path, systemClock);
    try {
      assert.throws(() => Deno.statSync(`${dir}/public_ca.crt`), Deno.errors.NotFound);
      assert.equal(ca.health().ok, true);
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        if (await Deno.stat(`${dir}/public_ca.crt`).then(() => true, () => false)) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const text = await Deno.readTextFile(`${dir}/public_ca.crt`);
      const root = new x509.X509Certificate(text);
      assert.equal(root.subject, ca.summary().root.subject);
    } finally {
      await ca.dispose();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a ca.pem others could read is reported at start: the key may have leaked", async () => {
  const { configure, reset } = await import("@logtape/logtape");
  const lines: string[] = [];
  await configure({
    reset: true,
    sinks: { mem: (r) => lines.push(`${r.level} ${r.message.join("")}`) },
    loggers: [
      { category: ["camblet"], lowestLevel: "info", sinks: ["mem"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["mem"] },
    ],
  });
  const dir = await Deno.makeTempDir({ prefix: "self-signed-mode-" });
  try {
    const path = `${dir}/ca.pem`;
    await (await openCa(path, systemClock)).dispose();
    await Deno.chmod(path, 0o644);
    const ca = await openCa(path, systemClock);
    await ca.dispose();
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    const warned = lines.filter((l) => l.startsWith("warning"));
    assert.equal(warned.length, 1, lines.join("\n"));
    assert.match(
      warned[0]!,
      /CA file .*ca\.pem.* was readable by group or others \(mode .*0644.*\)/,
    );
    assert.match(warned[0]!, /may have leaked/);
  } finally {
    await reset();
    await Deno.remove(dir, { recursive: true });
  }
});
