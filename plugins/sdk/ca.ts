/**
 * Writing an external CA plugin in TypeScript: {@linkcode serveCa} speaks the protocol, verifies
 * the CSR's signature (answering `csrRejected` for a tampered one) and encodes the results; the
 * plugin only issues.
 *
 * @module
 */
import { parseCsr, verifyCsr } from "./csr.ts";
import { toBase64 } from "./pem.ts";
import {
  type CaSignParams,
  type CaSignResult,
  type CaTrustBundleResult,
  ERROR,
  type HealthResult,
  METHOD,
  PluginRpcError,
} from "./protocol.ts";
import { type ServeOptions, servePlugin } from "./serve.ts";
import type { x509 } from "./x509.ts";

/** A verified signing request. */
export interface CaSignInput {
  /** The parsed CSR; its signature has been verified. */
  csr: x509.Pkcs10CertificateRequest;
  spiffeId: string;
  dnsNames: string[];
  ttlSeconds: number;
}

type Der = Uint8Array | x509.X509Certificate;

/** What the plugin's `sign` returns. */
export interface CaSignOutput {
  certificate: Der;
  chain: Der[];
  trustAnchors: Der[];
}

/** A CA plugin's logic. */
export interface CaPlugin {
  version?: string;
  /** Apply the config; return the longest leaf lifetime you issue. */
  configure(
    config: unknown,
    ctx: { trustDomain: string },
  ): Promise<{ maxTtlSeconds: number }> | { maxTtlSeconds: number };
  sign(input: CaSignInput): Promise<CaSignOutput>;
  trustBundle(): Promise<Der[]>;
  health?(): Promise<HealthResult> | HealthResult;
}

const b64 = (d: Der) => toBase64(d instanceof Uint8Array ? d : new Uint8Array(d.rawData));

/**
 * Serves a CA plugin on stdin/stdout.
 *
 * @example
 * ```ts ignore
 * import { serveCa } from "./ca.ts";
 * await serveCa({
 *   configure: () => ({ maxTtlSeconds: 86400 }),
 *   sign: async ({ csr, spiffeId }) => {  … issueLeaf(…) … },
 *   trustBundle: async () => [root],
 * });
 * ```
 */
export function serveCa(plugin: CaPlugin, options: ServeOptions = {}): Promise<void> {
  return servePlugin({
    kind: "ca",
    ...(plugin.version ? { version: plugin.version } : {}),
    configure: (config, ctx) => plugin.configure(config, ctx),
    ...(plugin.health ? { health: () => plugin.health!() } : {}),
    methods: {
      [METHOD.caSign]: async (params): Promise<CaSignResult> => {
        const p = params as CaSignParams;
        if (typeof p?.csr !== "string" || typeof p.spiffeId !== "string" || !(p.ttlSeconds > 0)) {
          throw new PluginRpcError(
            ERROR.invalidParams,
            "ca.sign needs csr, spiffeId and ttlSeconds",
          );
        }
        let csr;
        try {
          csr = parseCsr(p.csr);
        } catch (e) {
          throw new PluginRpcError(ERROR.csrRejected, (e as Error).message);
        }
        if (!(await verifyCsr(csr))) {
          throw new PluginRpcError(
            ERROR.csrRejected,
            "Cannot sign CSR: its signature does not verify",
          );
        }
        const r = await plugin.sign({
          csr,
          spiffeId: p.spiffeId,
          dnsNames: p.dnsNames ?? [],
          ttlSeconds: p.ttlSeconds,
        });
        return {
          certificate: b64(r.certificate),
          chain: r.chain.map(b64),
          trustAnchors: r.trustAnchors.map(b64),
        };
      },
      [METHOD.caTrustBundle]: async (): Promise<CaTrustBundleResult> => ({
        trustAnchors: (await plugin.trustBundle()).map(b64),
      }),
    },
  }, options);
}
