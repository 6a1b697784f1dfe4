#!/usr/bin/env -S deno run --allow-read --allow-write --allow-env
/**
 * A configurable misbehaving external plugin for the plugin host's tests. `--mode=`:
 * `ok` (a working CA or attestor), `hang-sign`, `die-on-sign`, `die-once` (dies on the first
 * sign, works after its restart; needs `--marker=<file>`), `hang-handshake`, `bad-version`,
 * `bad-config`, `no-max-ttl`. `--kind=attestor` serves `attestor.collect` instead.
 * `--health-file=<file>` makes `plugin.health` follow the file: absent or empty → ok; `exit` → the
 * plugin removes the file and exits with code 5 (so its restart is healthy); any other text → not
 * ok with that text as the message.
 *
 * @module
 */
import {
  createRootCa,
  ERROR,
  type HealthResult,
  issueLeaf,
  type PluginHandlers,
  PluginRpcError,
  PROTOCOL,
  serveCa,
  servePlugin,
} from "../../plugins/sdk/mod.ts";

const arg = (name: string) =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const mode = arg("mode") ?? "ok";
const kind = arg("kind") ?? "ca";
const marker = arg("marker");
const hang = () => new Promise<never>(() => setInterval(() => {}, 1 << 30));
const healthFile = arg("health-file");

async function health(): Promise<HealthResult> {
  if (!healthFile) return { ok: true };
  const text = (await Deno.readTextFile(healthFile).catch(() => "")).trim();
  if (text === "exit") {
    await Deno.remove(healthFile);
    Deno.exit(5);
  }
  return text === "" ? { ok: true } : { ok: false, message: text };
}

console.error(`fake plugin starting: kind=${kind} mode=${mode} pid=${Deno.pid}`);

if (mode === "hang-handshake") await hang();

if (mode === "bad-version") {
  // Answers the handshake with a version the agent does not speak.
  for await (const chunk of Deno.stdin.readable) {
    const req = JSON.parse(new TextDecoder().decode(chunk).split("\n")[0]!);
    const res = { jsonrpc: "2.0", id: req.id, result: { protocol: PROTOCOL, version: 99, kind } };
    await Deno.stdout.write(new TextEncoder().encode(JSON.stringify(res) + "\n"));
  }
  Deno.exit(0);
}

if (kind === "attestor") {
  const handlers: PluginHandlers = {
    kind: "attestor",
    health,
    methods: {
      "attestor.collect": (p) => ({
        labels: { "fake:pid": [String((p as { task: { pid: number } }).task.pid)] },
      }),
    },
  };
  await servePlugin(handlers);
  Deno.exit(0);
}

const now = Date.now();
const root = await createRootCa({
  commonName: "fake plugin CA",
  notBefore: new Date(now - 60_000),
  notAfter: new Date(now + 86_400_000),
});

await serveCa({
  configure(config) {
    if (mode === "bad-config") {
      throw new PluginRpcError(ERROR.badConfig, "invalid config", {
        problems: [{ field: "url", message: `required, got ${JSON.stringify(config)}` }],
      });
    }
    return mode === "no-max-ttl" ? {} as { maxTtlSeconds: number } : { maxTtlSeconds: 3600 };
  },
  async sign({ csr, spiffeId, ttlSeconds }) {
    if (mode === "hang-sign") return await hang();
    if (mode === "die-on-sign") Deno.exit(3);
    if (mode === "die-once" && marker) {
      try {
        await Deno.stat(marker);
      } catch {
        await Deno.writeTextFile(marker, "died once");
        Deno.exit(4);
      }
    }
    const t = Date.now();
    const leaf = await issueLeaf(root, {
      publicKey: csr.publicKey,
      subject: csr.subjectName,
      uris: [spiffeId],
      notBefore: new Date(t - 60_000),
      notAfter: new Date(t + ttlSeconds * 1000),
    });
    return { certificate: leaf, chain: [], trustAnchors: [root.certificate] };
  },
  trustBundle: () => Promise.resolve([root.certificate]),
  health,
});
