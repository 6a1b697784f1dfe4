/**
 * CSRs the kernel never sends but an attacker (or a bug) could: any SANs, signed with a real
 * RSA key so that only the identity checks can refuse them.
 *
 * @module
 */
import { encodePem } from "../../plugins/sdk/pem.ts";
import { generateRsaKeyPair, type KeyPair } from "../../plugins/sdk/keys.ts";
import { x509 } from "../../plugins/sdk/x509.ts";

let keys: Promise<KeyPair> | undefined;

/** What to ask for. */
export interface CsrOptions {
  uris?: string[];
  dnsNames?: string[];
  ips?: string[];
}

/** A PEM CSR (subject `CN=camblet-protected-workload`) with these SANs, properly signed. */
export async function makeCsr(options: CsrOptions): Promise<string> {
  keys ??= generateRsaKeyPair(2048);
  const names = [
    ...(options.uris ?? []).map((value) => ({ type: "url" as const, value })),
    ...(options.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(options.ips ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: "CN=camblet-protected-workload",
    keys: await keys,
    signingAlgorithm: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as Algorithm,
    extensions: names.length ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return encodePem("CERTIFICATE REQUEST", new Uint8Array(csr.rawData));
}

/** The kernel's `data` string for a CSR. */
export function csrData(csrPem: string, ttl?: string): string {
  return JSON.stringify(ttl === undefined ? { csr: csrPem } : { csr: csrPem, ttl });
}
