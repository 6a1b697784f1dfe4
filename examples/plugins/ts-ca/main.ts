#!/usr/bin/env -S deno run --allow-read --allow-env
/**
 * An external CA plugin in TypeScript: a small CA that keeps its root in memory (or reads one
 * from files), written with the camblet-agent plugin SDK. See docs/plugins.md for the walk-through.
 *
 * Config (`plugins.external[].config`):
 *   rootCertFile, rootKeyFile  PEM root certificate and PKCS#8 key (optional: else a new root)
 *   maxTtl                     longest leaf, Go duration (default "24h")
 *   commonName                 CN of the generated root (default "TS example CA")
 *
 * @module
 */
import { z } from "zod";
import {
  type CaCredentials,
  createRootCa,
  durationMs,
  ERROR,
  importPrivateKey,
  issueLeaf,
  parsePem,
  parseWith,
  PluginRpcError,
  serveCa,
  x509,
} from "../../../plugins/sdk/mod.ts";

const configSchema = z.object({
  rootCertFile: z.string().optional(),
  rootKeyFile: z.string().optional(),
  maxTtl: durationMs.default(86_400_000),
  commonName: z.string().default("TS example CA"),
}).strict();

let root: CaCredentials | undefined;
let maxTtlMs = 0;

async function loadRoot(certFile: string, keyFile: string): Promise<CaCredentials> {
  const certificate = new x509.X509Certificate(await Deno.readTextFile(certFile));
  const [keyBlock] = parsePem(await Deno.readTextFile(keyFile));
  if (!keyBlock) throw new Error(`Cannot read a key from "${keyFile}"`);
  return { certificate, keys: await importPrivateKey(keyBlock) };
}

await serveCa({
  version: "0.1.0",
  async configure(raw) {
    const parsed = parseWith(configSchema, raw);
    if (!parsed.ok) {
      throw new PluginRpcError(ERROR.badConfig, "invalid config", { problems: parsed.problems });
    }
    const c = parsed.value;
    maxTtlMs = c.maxTtl;
    if (c.rootCertFile && c.rootKeyFile) {
      root = await loadRoot(c.rootCertFile, c.rootKeyFile);
    } else {
      const now = Date.now();
      root = await createRootCa({
        commonName: c.commonName,
        notBefore: new Date(now - 120_000),
        notAfter: new Date(now + 365 * 86_400_000),
      });
      console.error("no rootCertFile/rootKeyFile: generated an in-memory root (lost on restart)");
    }
    return { maxTtlSeconds: Math.floor(maxTtlMs / 1000) };
  },
  // serveCa has already verified the CSR's signature; the agent has already checked policy.
  async sign({ csr, spiffeId, dnsNames, ttlSeconds }) {
    const now = Date.now();
    const ttl = Math.min(ttlSeconds * 1000, maxTtlMs);
    const leaf = await issueLeaf(root!, {
      publicKey: csr.publicKey,
      subject: csr.subjectName,
      uris: [spiffeId],
      dnsNames,
      notBefore: new Date(now - 120_000),
      notAfter: new Date(Math.min(now + ttl, root!.certificate.notAfter.getTime())),
    });
    return { certificate: leaf, chain: [], trustAnchors: [root!.certificate] };
  },
  trustBundle: () => Promise.resolve([root!.certificate]),
  health: () => ({ ok: root !== undefined }),
});
