#!/usr/bin/env -S deno run --allow-read --allow-write --allow-env --allow-run
/**
 * An external CA plugin that abuses the stdio channel when asked to sign. It answers the handshake,
 * `plugin.configure`, `ca.trustBundle` and `plugin.health` properly (so the agent starts), then on
 * `ca.sign`, by `--mode=`:
 *
 * - `huge-answer`: answers with one message of `--huge-mib=` MiB (default 256), streamed;
 * - `deep-answer`: answers with a message of half a million nested arrays (1 MB), again and again;
 * - `endless-line`: writes bytes without a newline until it is killed;
 * - `fork-exit`: starts a child (`sleep 3600`, holding the plugin's stdout and stderr) and exits;
 * - `garbage-flood`: writes short lines that are not JSON, on stdout and stderr, until killed;
 * - `stderr-flood`: writes short lines on stderr without end (and never answers);
 * - `escape-child`: starts such a child in a session of its own (out of reach of a process-group
 *   kill), then ignores `plugin.shutdown` and the end of stdin and never exits;
 * - `ok`: signs.
 *
 * Every process it starts (itself and the child) appends `pid` to `--pids=<file>`, so tests can
 * check that none is left behind.
 *
 * @module
 */
import { readLines } from "../../plugins/sdk/_lines.ts";
import { createRootCa, issueLeaf, parseCsr, toBase64 } from "../../plugins/sdk/mod.ts";

const arg = (name: string) =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const mode = arg("mode") ?? "ok";
const pidsFile = arg("pids");
const hugeMiB = Number(arg("huge-mib") ?? 256);

const enc = new TextEncoder();
const hang = () => new Promise<never>(() => setInterval(() => {}, 1 << 30));
const out = Deno.stdout.writable.getWriter();
const send = (msg: unknown) => out.write(enc.encode(JSON.stringify(msg) + "\n"));

function recordPid(pid: number, what: string): void {
  if (pidsFile) Deno.writeTextFileSync(pidsFile, `${pid} ${what}\n`, { append: true });
}
recordPid(Deno.pid, "plugin");
console.error(`abusive plugin starting: mode=${mode} pid=${Deno.pid}`);

const now = Date.now();
const root = await createRootCa({
  commonName: "abusive plugin CA",
  notBefore: new Date(now - 60_000),
  notAfter: new Date(now + 86_400_000),
});
const anchor = toBase64(new Uint8Array(root.certificate.rawData));

async function abuse(id: unknown, params: { csr: string; spiffeId: string; ttlSeconds: number }) {
  if (mode === "huge-answer") {
    await out.write(
      enc.encode(`{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":{"certificate":"`),
    );
    const mib = enc.encode("A".repeat(1024 * 1024));
    for (let i = 0; i < hugeMiB; i++) await out.write(mib);
    await out.write(enc.encode(`","chain":[],"trustAnchors":["${anchor}"]}}\n`));
    return;
  }
  if (mode === "garbage-flood" || mode === "stderr-flood") {
    const lines = enc.encode("not json-rpc, just noise\n".repeat(2048));
    const err = Deno.stderr.writable.getWriter();
    const both = mode === "garbage-flood";
    while (true) await Promise.all([both ? out.write(lines) : undefined, err.write(lines)]);
  }
  if (mode === "deep-answer") {
    const deep = enc.encode(
      `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${"[".repeat(500_000)}${
        "]".repeat(500_000)
      }}\n`,
    );
    while (true) await out.write(deep);
  }
  if (mode === "endless-line") {
    const chunk = enc.encode("x".repeat(64 * 1024));
    while (true) await out.write(chunk);
  }
  if (mode === "fork-exit" || mode === "escape-child") {
    const escape = mode === "escape-child";
    const child = new Deno.Command("sleep", {
      args: ["3600"],
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
      detached: escape,
    }).spawn();
    recordPid(child.pid, escape ? "escaped" : "child");
    if (escape) return await hang();
    Deno.exit(7);
  }
  const csr = parseCsr(params.csr);
  const t = Date.now();
  const leaf = await issueLeaf(root, {
    publicKey: csr.publicKey,
    subject: csr.subjectName,
    uris: [params.spiffeId],
    notBefore: new Date(t - 60_000),
    notAfter: new Date(t + params.ttlSeconds * 1000),
  });
  const result = {
    certificate: toBase64(new Uint8Array(leaf.rawData)),
    chain: [],
    trustAnchors: [anchor],
  };
  await send({ jsonrpc: "2.0", id, result });
}

for await (const line of readLines(Deno.stdin.readable)) {
  if (line.trim() === "") continue;
  const req = JSON.parse(line) as { id?: unknown; method: string; params?: unknown };
  const p = req.params as Record<string, unknown>;
  switch (req.method) {
    case "plugin.handshake":
      await send({
        jsonrpc: "2.0",
        id: req.id,
        result: { protocol: "camblet-plugin", version: 1, kind: "ca" },
      });
      break;
    case "plugin.configure":
      await send({ jsonrpc: "2.0", id: req.id, result: { maxTtlSeconds: 3600 } });
      break;
    case "plugin.health":
      await send({ jsonrpc: "2.0", id: req.id, result: { ok: true } });
      break;
    case "ca.trustBundle":
      await send({ jsonrpc: "2.0", id: req.id, result: { trustAnchors: [anchor] } });
      break;
    case "ca.sign":
      void abuse(req.id, p as { csr: string; spiffeId: string; ttlSeconds: number });
      break;
    case "plugin.shutdown":
      if (mode === "escape-child") break;
      await send({ jsonrpc: "2.0", id: req.id, result: {} });
      Deno.exit(0);
  }
}
if (mode === "escape-child") await hang();
