import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { externalPlugin } from "./external.ts";
import { loadPlugins, PluginLoadError, type PluginSelection } from "./loader.ts";
import { sha256File } from "./_sha256.ts";
import { type CertificateAuthority, CsrRejectedError } from "./ca/types.ts";
import { parseCsr } from "./sdk/csr.ts";
import { FAKE_PLUGIN, testContext } from "../tests/fakes/ca_plugins.ts";
import { captureCsrSign, pki } from "../tests/fakes/identity_capture.ts";

const SHA = await sha256File(FAKE_PLUGIN);
const ABUSIVE_PLUGIN = new URL("../tests/fakes/ca_abusive_plugin.ts", import.meta.url).pathname;
const ABUSIVE_SHA = await sha256File(ABUSIVE_PLUGIN);

async function rejectsWith(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof Error, String(e));
    assert.match(e.message, re);
    return true;
  });
}

function selection(
  args: string[],
  entry: Record<string, unknown> = {},
  kind: "ca" | "attestor" = "ca",
  name = "fake",
): PluginSelection {
  return {
    kind,
    name,
    path: `plugins.external[${name}]`,
    definition: externalPlugin(kind, name),
    config: {
      kind,
      name,
      path: FAKE_PLUGIN,
      args,
      sha256: SHA,
      callTimeout: "1s",
      startTimeout: "30s", // a Deno child can take seconds to start on a loaded CI machine
      restartBackoff: "50ms",
      ...entry,
    },
  };
}

function load(selections: PluginSelection[], enforce: ("ca" | "attestor")[] = ["ca"]) {
  return loadPlugins(selections, { enforce, context: testContext });
}

async function signKernelCsr(ca: CertificateAuthority) {
  const csr = new Uint8Array(parseCsr(await pki("csr-web.pem")).rawData);
  return ca.sign(
    { csr, spiffeId: "spiffe://acme.test/web", dnsNames: [], ttlMs: 600_000 },
    new AbortController().signal,
  );
}

async function until(what: string, fn: () => boolean, ms = 10_000) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

Deno.test("external plugins", async (t) => {
  await t.step("a working plugin signs, and shutdown stops it", async () => {
    const plugins = await load([selection(["--mode=ok"])]);
    const ca = plugins.of("ca")[0]!;
    assert.equal(ca.maxTtlMs, 3_600_000);
    assert.ok((await signKernelCsr(ca)).certificate.length > 500);
    await plugins.dispose();
    assert.equal((ca as unknown as { state: string }).state, "stopped");
  });

  await t.step("checksum mismatch: refused before it starts", async () => {
    const bad = selection(["--mode=ok"], { sha256: "0".repeat(64) });
    await assert.rejects(load([bad]), (e: Error) => {
      assert.ok(e instanceof PluginLoadError);
      assert.match(
        e.message,
        /^ca\(fake\): Cannot start plugin ".*ca_fake_plugin\.ts": its sha256 is [0-9a-f]{64}, the config expects 0{64}$/,
      );
      return true;
    });
  });

  await t.step("no checksum: starts with a warning", async () => {
    const records: LogRecord[] = [];
    await configure({
      reset: true,
      sinks: { mem: (r) => records.push(r) },
      loggers: [{ category: ["camblet"], lowestLevel: "warning", sinks: ["mem"] }, {
        category: ["logtape", "meta"],
        lowestLevel: "error",
        sinks: ["mem"],
      }],
    });
    try {
      const s = selection(["--mode=ok"]);
      delete (s.config as Record<string, unknown>)["sha256"];
      const plugins = await load([s]);
      await plugins.dispose();
      assert.ok(records.some((r) => String(r.message.join("")).includes("No sha256 configured")));
    } finally {
      await reset();
    }
  });

  await t.step("bad config: the plugin's problems are reported", async () => {
    await rejectsWith(
      load([selection(["--mode=bad-config"], { config: { x: 1 } })]),
      /^ca\(fake\): invalid config: config\.url: required, got \{"x":1\}$/,
    );
  });

  await t.step("bad entry: every problem at once, nothing started", async () => {
    const s = selection([], { path: "", sha256: "xyz", callTimeout: "soon", extra: true });
    await assert.rejects(load([s]), (e: PluginLoadError) => {
      assert.deepEqual(e.problems.map((p) => p.split(":")[0]), [
        "plugins.external[fake].path",
        "plugins.external[fake].sha256",
        "plugins.external[fake].callTimeout",
        "plugins.external[fake].extra",
      ]);
      return true;
    });
  });

  await t.step("protocol version mismatch and hung handshake are refused", async () => {
    await rejectsWith(
      load([selection(["--mode=bad-version"])]),
      /answered protocol camblet-plugin version 99/,
    );
    const started = Date.now();
    await rejectsWith(
      load([selection(["--mode=hang-handshake"], { startTimeout: "800ms" })]),
      /plugin\.handshake: no answer within 800 ms/,
    );
    assert.ok(Date.now() - started < 5000);
  });

  await t.step("a CA that reports no maximum TTL is refused", async () => {
    await rejectsWith(load([selection(["--mode=no-max-ttl"])]), /did not report maxTtlSeconds/);
  });

  await t.step("plugin that hangs: calls time out, then it is killed and restarted", async () => {
    const plugins = await load([selection(["--mode=hang-sign"], { callTimeout: "300ms" })]);
    const ca = plugins.of("ca")[0]!;
    const state = () => (ca as unknown as { state: string }).state;
    try {
      for (let i = 0; i < 3; i++) {
        await rejectsWith(
          signKernelCsr(ca),
          /^ca\(fake\): Cannot call ca\.sign: no answer within 300 ms$/,
        );
      }
      await until("restart", () => state() !== "ready");
      await until("ready again", () => state() === "ready");
      assert.deepEqual((await ca.trustBundle()).length, 1, "the restarted plugin answers");
    } finally {
      await plugins.dispose();
    }
  });

  await t.step(
    "plugin that dies: the call fails, it is restarted with backoff, then works",
    async () => {
      const marker = await Deno.makeTempFile();
      await Deno.remove(marker);
      const plugins = await load([selection(["--mode=die-once", `--marker=${marker}`])]);
      const ca = plugins.of("ca")[0]!;
      const state = () => (ca as unknown as { state: string }).state;
      try {
        await rejectsWith(signKernelCsr(ca), /^ca\(fake\): Plugin exited with code 4$/);
        await rejectsWith(signKernelCsr(ca), /plugin is (restarting|starting)/);
        await until("ready again", () => state() === "ready");
        assert.ok((await signKernelCsr(ca)).certificate.length > 500);
      } finally {
        await plugins.dispose();
        await Deno.remove(marker).catch(() => {});
      }
    },
  );

  await t.step("a tampered CSR is CsrRejectedError across the process boundary", async () => {
    const plugins = await load([selection(["--mode=ok"])]);
    try {
      const der = new Uint8Array(parseCsr(await pki("csr-web.pem")).rawData);
      der[der.length - 2]! ^= 1;
      await assert.rejects(
        plugins.of("ca")[0]!.sign({
          csr: der,
          spiffeId: "spiffe://acme.test/web",
          dnsNames: [],
          ttlMs: 1000,
        }, new AbortController().signal),
        CsrRejectedError,
      );
    } finally {
      await plugins.dispose();
    }
  });

  await t.step("all or nothing: a failing plugin disposes the ones already started", async () => {
    const first = selection([`--kind=attestor`], {}, "attestor", "fake-attestor");
    await rejectsWith(
      load([first, selection(["--mode=bad-version"])], ["ca", "attestor"]),
      /^ca\(fake\): Cannot use plugin/,
    );
    // Nothing leaks: the attestor's process was stopped (the test's sanitizers check the rest).
    const plugins = await load([first, selection(["--mode=ok"])], ["ca", "attestor"]);
    const labels = await plugins.of("attestor")[0]!.collect(
      (await captureCsrSign("curl")).task_context,
      new AbortController().signal,
    );
    assert.deepEqual(Object.keys(labels), ["fake:pid"]);
    await plugins.dispose();
  });

  await t.step("maxMessageSize: bytes or KiB/MiB within 4KiB..64MiB, else a problem", async () => {
    await rejectsWith(
      load([selection([], { maxMessageSize: "1GiB" })]),
      /plugins\.external\[fake\]\.maxMessageSize: Cannot use message size "1GiB"/,
    );
  });

  await t.step(
    "a message over maxMessageSize: killed with its group, restarted",
    async () => {
      const pids = await Deno.makeTempFile();
      const plugins = await load([
        selection(["--mode=huge-answer", "--huge-mib=8", `--pids=${pids}`], {
          path: ABUSIVE_PLUGIN,
          sha256: ABUSIVE_SHA,
          maxMessageSize: "64KiB",
        }),
      ]);
      const ca = plugins.of("ca")[0]!;
      const state = () => (ca as unknown as { state: string }).state;
      try {
        await rejectsWith(
          signKernelCsr(ca),
          /^ca\(fake\): Plugin killed: wrote a message over 65536 bytes \((killed by SIGKILL|exited with code \d+)\)$/,
        );
        await until("ready again", () => state() === "ready");
        assert.equal((await ca.trustBundle()).length, 1, "the restarted plugin answers");
      } finally {
        await plugins.dispose();
        await Deno.remove(pids);
      }
    },
  );

  await t.step(
    "dispose is bounded: a plugin that ignores shutdown, with a child that escaped its group",
    async () => {
      const pids = await Deno.makeTempFile();
      const plugins = await load([selection(["--mode=escape-child", `--pids=${pids}`], {
        path: ABUSIVE_PLUGIN,
        sha256: ABUSIVE_SHA,
        callTimeout: "300ms",
      })]);
      const ca = plugins.of("ca")[0]!;
      await rejectsWith(signKernelCsr(ca), /no answer within 300 ms/);
      const started = performance.now();
      await plugins.dispose();
      const ms = performance.now() - started;
      const lines = (await Deno.readTextFile(pids)).trim().split("\n");
      for (const l of lines) {
        try {
          Deno.kill(Number(l.split(" ")[0]), "SIGKILL");
        } catch { /* gone */ }
      }
      await Deno.remove(pids);
      assert.ok(lines.some((l) => l.endsWith(" escaped")), lines.join("; "));
      assert.ok(ms < 5000, `dispose took ${Math.round(ms)} ms`);
    },
  );
});
