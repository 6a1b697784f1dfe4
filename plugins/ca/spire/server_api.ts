/**
 * The SPIRE Server API call a downstream CA makes: `spire.api.server.svid.v1.SVID/
 * NewDownstreamX509CA`, over mutual TLS with the caller's X509-SVID (the server authorises it
 * only when a registration entry for that SPIFFE ID has `downstream = true`). The server's
 * certificate is checked against the trust domain's bundle and its SPIFFE ID.
 *
 * @module
 */
import { encodePem } from "../../sdk/pem.ts";
import { GRPC_RESOURCE_EXHAUSTED, GrpcClient, GrpcError, grpcTlsTarget } from "../../sdk/grpc.ts";
import { bytesList, decodeFields, encodeMessage } from "../../sdk/proto.ts";
import type { X509Svid } from "./workload_api.ts";

const NEW_DOWNSTREAM_X509_CA = "/spire.api.server.svid.v1.SVID/NewDownstreamX509CA";

/** The server's answer. */
export interface DownstreamCa {
  /** The new CA certificate first, then intermediates up to the authorities (DER). */
  caCertChain: Uint8Array[];
  /** The trust domain's X.509 authorities (DER roots). */
  x509Authorities: Uint8Array[];
}

/** Where the server is and who it must be. */
export interface ServerTarget {
  host: string;
  port: number;
  /** `spiffe://<td>/spire/server` */
  serverId: string;
}

const pemChain = (ders: Uint8Array[], label = "CERTIFICATE") =>
  ders.map((d) => encodePem(label, d)).join("");

/**
 * Asks the SPIRE server for a downstream X.509 CA for the public key in `csr` (DER). Retries
 * once a second while the server's rate limit (one per second per caller) refuses.
 */
export async function newDownstreamX509Ca(
  target: ServerTarget,
  svid: X509Svid,
  request: { csr: Uint8Array; preferredTtlSeconds: number },
  signal: AbortSignal,
): Promise<DownstreamCa> {
  const client = new GrpcClient(grpcTlsTarget({
    host: target.host,
    port: target.port,
    ca: pemChain(svid.bundle),
    cert: pemChain(svid.chain),
    key: encodePem("PRIVATE KEY", svid.key),
    checkPeer: (san) =>
      san.split(/,\s*/).includes(`URI:${target.serverId}`) ? undefined : new Error(
        `the server's certificate is not for ${target.serverId} (SANs: ${san || "none"})`,
      ),
  }));
  try {
    const body = encodeMessage({ 1: request.csr, 2: request.preferredTtlSeconds });
    for (let attempt = 0;; attempt++) {
      try {
        const res = decodeFields(await client.unary(NEW_DOWNSTREAM_X509_CA, body, signal));
        const out = { caCertChain: bytesList(res, 1), x509Authorities: bytesList(res, 2) };
        if (out.caCertChain.length === 0) {
          throw new Error(`Cannot use the SPIRE server's answer: no CA certificate in it`);
        }
        return out;
      } catch (e) {
        if (!(e instanceof GrpcError && e.code === GRPC_RESOURCE_EXHAUSTED) || attempt >= 3) {
          throw e;
        }
        await new Promise((r) => setTimeout(r, 1100));
        signal.throwIfAborted();
      }
    }
  } finally {
    await client.close();
  }
}
