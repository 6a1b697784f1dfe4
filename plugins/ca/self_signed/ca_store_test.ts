import assert from "node:assert/strict";
import { bundleOf, caPaths, ensureCa, readCaState, rotateCa, type WriteStep } from "./ca_store.ts";
import { parseSelfSignedConfig, type SelfSignedConfig } from "./config.ts";
import { writeGoCaPem } from "../../../tests/fakes/ca_go_fixture.ts";
import { parsePem } from "../../sdk/pem.ts";
import type { Clock } from "../../types.ts";

const H = 3_600_000;
const T0 = Date.UTC(2026, 10, 22, 5);
const at = (t: number): Clock => ({ now: () => t });

function config(caPemPath: string, extra: Record<string, unknown> = {}): SelfSignedConfig {
  const r = parseSelfSignedConfig({ caPemPath, maxCertTtl: "2h", ...extra });
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.value;
}

const mode = async (p: string) => (await Deno.stat(p)).mode! & 0o777;

/** Every file loads, and the bundle on disk holds the active root. */
async function assertValid(caPem: string): Promise<void> {
  const paths = caPaths(caPem);
  const state = await readCaState(paths);
  assert.ok(state, "ca.pem loads");
  const bundle = parsePem(await Deno.readTextFile(paths.publicCa));
  assert.ok(bundle.length >= 1);
  const after = await ensureCa(config(caPem), at(Date.now()));
  const onDisk = parsePem(await Deno.readTextFile(paths.publicCa)).map((b) =>
    btoa(String.fromCharCode(...b.der))
  );
  const root = btoa(String.fromCharCode(...new Uint8Array(after.state.material.root.rawData)));
  assert.ok(
    onDisk.includes(root),
    "public_ca.crt holds the active root after the agent's next start",
  );
}

Deno.test("self-signed CA files", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "ca-store-" });
  try {
    await t.step(
      "a missing ca.pem (and directory) is created: RSA-2048 root, 10 years, 0600; public_ca.crt 0644",
      async () => {
        const caPem = `${dir}/new/ca.pem`;
        const u = await ensureCa(config(caPem), at(T0));
        assert.equal(await mode(`${dir}/new`), 0o700);
        assert.equal(u.created, true);
        const root = u.state.material.root;
        assert.equal(root.subject, "CN=Camblet root CA");
        assert.equal((root.publicKey.algorithm as RsaHashedKeyAlgorithm).modulusLength, 2048);
        assert.equal(root.notAfter.getTime(), T0 + 87_600 * H);
        assert.equal(root.notBefore.getTime(), T0 - 120_000);
        assert.equal(await mode(caPem), 0o600);
        assert.equal(await mode(`${dir}/new/public_ca.crt`), 0o644);
        const again = await ensureCa(config(caPem), at(T0 + H));
        assert.equal(again.created, false);
        assert.ok(again.state.material.root.equal(root), "the same root on the next start");
      },
    );

    await t.step("configurable key size and an optional intermediate", async () => {
      await Deno.mkdir(`${dir}/int`);
      const u = await ensureCa(
        config(`${dir}/int/ca.pem`, { keySize: 3072, intermediate: true }),
        at(T0),
      );
      const m = u.state.material;
      assert.equal(m.signer.certificate.subject, "CN=Camblet intermediate CA");
      assert.equal(m.signer.certificate.issuer, m.root.subject);
      assert.equal((m.root.publicKey.algorithm as RsaHashedKeyAlgorithm).modulusLength, 3072);
      assert.ok(m.rootKeys, "the root key stays, to sign the next intermediate");
    });

    await t.step("a Go ca.pem loads, is chmod 0600 and left as it is", async () => {
      const { path } = await writeGoCaPem(await Deno.makeTempDir({ dir }));
      const before = await Deno.readTextFile(path);
      const u = await ensureCa(config(path), at(Date.now()));
      assert.equal(u.state.format, "camblet-go");
      assert.equal(await mode(path), 0o600);
      assert.equal(await Deno.readTextFile(path), before);
    });

    await t.step(
      "rotating the root keeps the old one trusted until its last leaf expires",
      async () => {
        const { path } = await writeGoCaPem(await Deno.makeTempDir({ dir }));
        const now = Date.now();
        const old = (await ensureCa(config(path), at(now))).state.material.root;
        const oldSubject = old.subject;
        const u = await rotateCa(config(path), at(now), { force: "root" });
        const m = u.state.material;
        assert.ok(!m.root.equal(old));
        assert.notEqual(
          m.root.subject,
          oldSubject,
          "a new root never shares its name with a kept one",
        );
        assert.equal(u.state.retired.length, 1);
        assert.equal(u.state.retired[0]!.keepUntil, now + 2 * H);
        assert.equal(bundleOf(u.state).length, 2);
        assert.equal(parsePem(await Deno.readTextFile(caPaths(path).publicCa)).length, 2);
        assert.doesNotMatch(
          await Deno.readTextFile(path),
          /Type: ROOT CA/,
          "written as standard PEM",
        );
        // After the old root's last leaf has expired, the next start drops it.
        const later = await ensureCa(config(path), at(now + 2 * H + 1));
        assert.equal(later.state.retired.length, 0);
        assert.equal(parsePem(await Deno.readTextFile(caPaths(path).publicCa)).length, 1);
      },
    );

    await t.step(
      "a root close to expiry is rotated at start; autoRotate: false leaves it and says so",
      async () => {
        await Deno.mkdir(`${dir}/auto`);
        const caPem = `${dir}/auto/ca.pem`;
        const first = await ensureCa(config(caPem, { rootTtl: "10h" }), at(T0));
        const kept = await ensureCa(config(caPem, { autoRotate: false }), at(T0));
        assert.ok(kept.state.material.root.equal(first.state.material.root));
        assert.match(
          kept.plan!.error!,
          /a root rotation is due \(root expires soon \(10h left\)\) but autoRotate is off/,
        );
        const rotated = await ensureCa(config(caPem), at(T0));
        assert.equal(rotated.plan?.action, "root");
        assert.match(rotated.plan!.reason, /root expires soon/);
        assert.equal(rotated.state.retired.length, 1);
      },
    );

    await t.step(
      "rotating the intermediate keeps the root and needs no retired anchor",
      async () => {
        const caPem = `${dir}/int/ca.pem`;
        const before = (await readCaState(caPaths(caPem)))!.material;
        const u = await rotateCa(config(caPem, { intermediate: true }), at(T0 + H), {
          force: "intermediate",
        });
        assert.ok(u.state.material.root.equal(before.root));
        assert.ok(!u.state.material.signer.certificate.equal(before.signer.certificate));
        assert.equal(u.state.retired.length, 0);
      },
    );

    for (const step of ["retired", "ca", "bundle"] as WriteStep[]) {
      await t.step(`a crash after writing "${step}" leaves valid files`, async () => {
        await Deno.mkdir(`${dir}/crash-${step}`);
        const caPem = `${dir}/crash-${step}/ca.pem`;
        await ensureCa(config(caPem, { intermediate: true }), at(Date.now()));
        await assert.rejects(
          rotateCa(config(caPem, { intermediate: true }), at(Date.now()), {
            force: "root",
            onStep: (s) => {
              if (s === step) throw new Error("crash");
            },
          }),
          { message: "crash" },
        );
        await assertValid(caPem);
      });
    }

    await t.step(
      "SIGKILL during rotation (at each step, and at random times) leaves valid files",
      async () => {
        await Deno.mkdir(`${dir}/kill`);
        const caPem = `${dir}/kill/ca.pem`;
        await ensureCa(config(caPem, { intermediate: true }), at(Date.now()));
        const child = new URL("../../../tests/fakes/ca_rotate_child.ts", import.meta.url).pathname;
        const run = async (pauseAt: string | undefined, killAfterMs: number | undefined) => {
          const p = new Deno.Command(Deno.execPath(), {
            args: [
              "run",
              "-A",
              child,
              `--ca-pem-path=${caPem}`,
              ...(pauseAt ? [`--pause-at=${pauseAt}`] : []),
            ],
            stdout: "piped",
            stderr: "null",
          }).spawn();
          const lines: string[] = [];
          const reader = (async () => {
            const dec = new TextDecoder();
            for await (const chunk of p.stdout) {
              lines.push(...dec.decode(chunk).split("\n").filter(Boolean));
              if (lines.includes("paused")) p.kill("SIGKILL");
              if (killAfterMs !== undefined && lines.includes("started")) {
                await new Promise((r) => setTimeout(r, killAfterMs));
                try {
                  p.kill("SIGKILL");
                } catch { /* already done */ }
              }
            }
          })();
          const status = await p.status;
          await reader;
          return { status, lines };
        };
        for (const step of ["retired", "ca", "bundle"]) {
          const r = await run(step, undefined);
          assert.equal(r.status.signal, "SIGKILL");
          assert.ok(r.lines.includes(`step ${step}`), r.lines.join(","));
          await assertValid(caPem);
        }
        for (const ms of [0, 50, 150, 400]) {
          await run(undefined, ms);
          await assertValid(caPem);
          const leftovers = [...Deno.readDirSync(`${dir}/kill`)].filter((e) =>
            e.name.includes(".tmp-")
          );
          assert.deepEqual(
            leftovers,
            [],
            "the next start removes temp files of interrupted writes",
          );
        }
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("self-signed CA files: hostile or careless files", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "camblet-ca-hostile-" });
  try {
    await t.step("a ca.pem found at 0644 is made 0600 and reported as maybe leaked", async () => {
      const d = await Deno.makeTempDir({ dir });
      const path = `${d}/ca.pem`;
      await ensureCa(config(path), at(Date.now()));
      await Deno.chmod(path, 0o644);
      const u = await ensureCa(config(path), at(Date.now()));
      assert.equal(await mode(path), 0o600);
      assert.deepEqual(u.looseMode, { path, mode: 0o644 });
      const again = await ensureCa(config(path), at(Date.now()));
      assert.equal(again.looseMode, undefined);
    });

    await t.step("temp files of interrupted writes are removed at start; others kept", async () => {
      const d = await Deno.makeTempDir({ dir });
      const path = `${d}/ca.pem`;
      await ensureCa(config(path), at(Date.now()));
      const stale = [".ca.pem.tmp-1a2b", ".public_ca.crt.tmp-3c4d", ".retired_ca.crt.tmp-5e6f"];
      for (const name of stale) await Deno.writeTextFile(`${d}/${name}`, "half a write");
      await Deno.writeTextFile(`${d}/.other.tmp-1`, "not ours");
      await ensureCa(config(path), at(Date.now()));
      const names = [...Deno.readDirSync(d)].map((e) => e.name).sort();
      assert.deepEqual(names.filter((n) => n.includes(".tmp-")), [".other.tmp-1"]);
    });

    await t.step("a FIFO at ca.pem fails at once, naming it", async () => {
      const d = await Deno.makeTempDir({ dir });
      const path = `${d}/ca.pem`;
      assert.equal((await new Deno.Command("mkfifo", { args: [path] }).output()).code, 0);
      let timer: ReturnType<typeof setTimeout> | undefined;
      // Opens the FIFO for writing after 3 s so that a reader blocked on it (the bug) ends.
      const rescue = new Promise<"late">((r) =>
        timer = setTimeout(async () => {
          const { open, constants } = await import("node:fs/promises");
          (await open(path, constants.O_RDWR | constants.O_NONBLOCK)).close();
          r("late");
        }, 3000)
      );
      const r = await Promise.race([
        readCaState(caPaths(path)).then(() => "read", (e: Error) => e.message),
        rescue,
      ]);
      clearTimeout(timer);
      assert.notEqual(r, "late", "reading ca.pem blocked on the FIFO");
      assert.match(String(r), /Cannot read ".*ca\.pem": .* is a FIFO, not a regular file/);
    });

    await t.step("leading bytes that are not UTF-8 are named as such", async () => {
      const d = await Deno.makeTempDir({ dir });
      const path = `${d}/ca.pem`;
      await ensureCa(config(path), at(Date.now()));
      const text = await Deno.readFile(path);
      await Deno.writeFile(path, new Uint8Array([0xff, 0xfe, 0x00, ...text]));
      await assert.rejects(
        () => readCaState(caPaths(path)),
        (e: Error) => {
          assert.match(e.message, /Cannot load CA file ".*ca\.pem": it is not UTF-8 text/);
          assert.match(e.message, /byte 0/);
          assert.doesNotMatch(e.message, /no CERTIFICATE block/);
          return true;
        },
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
