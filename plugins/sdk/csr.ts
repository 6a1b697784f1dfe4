/**
 * Reading PKCS#10 certificate requests: parse, check the self-signature (proof that the requester
 * holds the key; the kernel's key is RSA-2048 with exponent 3, which WebCrypto verifies), list SANs.
 *
 * @module
 */
import { x509 } from "./x509.ts";
import type { KeyPair } from "./keys.ts";
import { signingAlgorithm } from "./keys.ts";
import { type CsrDer, readCsrDer, verifyCsrDer } from "./leaf_der.ts";
import { parsePem } from "./pem.ts";

export type { CsrDer };

/** The SANs a CSR asks for, by type. */
export interface CsrNames {
  uris: string[];
  dnsNames: string[];
  /** IP, e-mail and other SAN types: the kernel never sends them. */
  others: string[];
}

/**
 * Parses a CSR from PEM or DER; throws `SyntaxError` saying why it cannot be read.
 *
 * @example
 * ```ts
 * import { parseCsr } from "./csr.ts";
 * const pem = await Deno.readTextFile(
 *   "tests/testdata/camblet-driver/pki/csr-web.pem",
 * );
 * parseCsr(pem).subject; // "CN=camblet-protected-workload"
 * ```
 */
export function parseCsr(input: string | Uint8Array): x509.Pkcs10CertificateRequest {
  try {
    if (typeof input === "string") {
      if (!input.includes("-----BEGIN CERTIFICATE REQUEST-----")) {
        throw new Error('no "CERTIFICATE REQUEST" PEM block');
      }
      return new x509.Pkcs10CertificateRequest(input);
    }
    return new x509.Pkcs10CertificateRequest(input.slice().buffer as ArrayBuffer);
  } catch (e) {
    throw new SyntaxError(`Cannot parse CSR: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Reads a CSR from PEM or DER on the fast path ({@linkcode readCsrDer}: the parts cut from the
 * original bytes, no ASN.1 object tree); throws `SyntaxError` saying why it cannot be read.
 */
export function readCsr(input: string | Uint8Array): CsrDer {
  if (typeof input !== "string") return readCsrDer(input);
  let blocks;
  try {
    blocks = parsePem(input);
  } catch (e) {
    throw new SyntaxError(`Cannot parse CSR: ${e instanceof Error ? e.message : String(e)}`);
  }
  const block = blocks.find((b) => b.label === "CERTIFICATE REQUEST");
  if (!block) throw new SyntaxError('Cannot parse CSR: no "CERTIFICATE REQUEST" PEM block');
  return readCsrDer(block.der);
}

/**
 * Verifies a CSR read by {@linkcode readCsr}: natively for RSA PKCS#1 v1.5 (what the kernel
 * sends), through @peculiar/x509 otherwise. False for a tampered request or an unusable key.
 */
export async function verifyCsrFast(csr: CsrDer): Promise<boolean> {
  const fast = await verifyCsrDer(csr);
  if (fast !== undefined) return fast;
  try {
    return await verifyCsr(parseCsr(csr.der));
  } catch {
    return false;
  }
}

/** Verifies the CSR's self-signature; false for a tampered request or an unusable key. */
export async function verifyCsr(csr: x509.Pkcs10CertificateRequest): Promise<boolean> {
  try {
    return await csr.verify();
  } catch {
    return false;
  }
}

/** The SANs of a CSR's extension request. */
export function csrNames(csr: x509.Pkcs10CertificateRequest): CsrNames {
  const out: CsrNames = { uris: [], dnsNames: [], others: [] };
  for (const ext of csr.extensions) {
    if (!(ext instanceof x509.SubjectAlternativeNameExtension)) continue;
    for (const name of ext.names.items) {
      if (name.type === "url") out.uris.push(name.value);
      else if (name.type === "dns") out.dnsNames.push(name.value);
      else out.others.push(`${name.type}:${name.value}`);
    }
  }
  return out;
}

/**
 * Creates a PKCS#10 request (DER) for `keys`, e.g. for an upstream CA (Vault, SPIRE) to certify
 * an agent-held intermediate key.
 *
 * @example
 * ```ts
 * import { createCsr } from "./csr.ts";
 * import { generateRsaKeyPair } from "./keys.ts";
 * const der = await createCsr(await generateRsaKeyPair(), "CN=Camblet agent CA");
 * der.length > 0; // true
 * ```
 */
export async function createCsr(keys: KeyPair, subject: string): Promise<Uint8Array> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subject,
    keys: keys as CryptoKeyPair,
    signingAlgorithm: signingAlgorithm(keys.privateKey),
  });
  return new Uint8Array(csr.rawData);
}
