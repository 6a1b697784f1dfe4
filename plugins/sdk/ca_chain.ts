/**
 * Handling the certificate chains an upstream CA returns: split a chain into intermediates and
 * self-signed roots, de-duplicate, and check that every certificate is RSA (camblet-driver verifies
 * only RSA; see {@linkcode requireRsa}).
 *
 * @module
 */
import { CapabilityError } from "./errors.ts";
import { fromBase64, parsePem, toBase64 } from "./pem.ts";
import { isSelfSigned, keyType, x509 } from "./x509.ts";

/** Parses a DER certificate. */
export function certOf(der: Uint8Array): x509.X509Certificate {
  return new x509.X509Certificate(der.slice().buffer as ArrayBuffer);
}

/** DER of a parsed certificate. */
export function derOf(cert: x509.X509Certificate): Uint8Array {
  return new Uint8Array(cert.rawData);
}

/** Certificates from PEM text, or from a base64 DER string (as Vault's `format=der` gives). */
export function certificatesFrom(text: string): Uint8Array[] {
  if (text.includes("-----BEGIN")) {
    return parsePem(text).filter((b) => b.label === "CERTIFICATE").map((b) => b.der);
  }
  return [fromBase64(text.trim())];
}

/** Removes repeated certificates, keeping the first of each. */
export function uniqueDer(ders: readonly Uint8Array[]): Uint8Array[] {
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  for (const d of ders) {
    const k = toBase64(d);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(d);
  }
  return out;
}

/** True when two DER certificates are the same bytes. */
export function sameDer(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return !!a && !!b && a.length === b.length && a.every((v, i) => v === b[i]);
}

/** A chain split into the certificates to send and the self-signed roots to trust. */
export interface SplitChain {
  /** Non-self-signed certificates, in the given order. */
  intermediates: Uint8Array[];
  /** Self-signed certificates. */
  roots: Uint8Array[];
}

/**
 * Splits `ders` into intermediates and self-signed roots. When no root is in the chain (an
 * upstream that is itself an intermediate of an outside root), the last certificate is taken as
 * the anchor so that peers can still verify.
 */
export async function splitChain(ders: readonly Uint8Array[]): Promise<SplitChain> {
  const out: SplitChain = { intermediates: [], roots: [] };
  for (const d of uniqueDer(ders)) {
    if (await isSelfSigned(certOf(d))) out.roots.push(d);
    else out.intermediates.push(d);
  }
  if (out.roots.length === 0 && out.intermediates.length > 0) {
    out.roots.push(out.intermediates.pop()!);
  }
  return out;
}

/** `"CN=x" (EC)` for each certificate whose key is not RSA. */
export function nonRsa(ders: readonly Uint8Array[]): string[] {
  return ders.map(certOf).filter((c) => keyType(c) !== "RSA").map((c) =>
    `"${c.subject}" (${keyType(c)})`
  );
}

/**
 * Throws {@linkcode CapabilityError} when a certificate of the chain is not RSA: camblet-driver
 * treats every trust anchor as RSA and verifies RSA chains only, so every handshake would fail.
 */
export function requireRsa(ders: readonly Uint8Array[], what: string, fix: string): void {
  const bad = nonRsa(ders);
  if (bad.length > 0) {
    throw new CapabilityError(
      `Cannot use ${what} with camblet-driver: ${bad.join(", ")} ${
        bad.length === 1 ? "is" : "are"
      } not RSA, and the kernel module verifies only RSA chains; ${fix}`,
    );
  }
}

/** The certificate's notAfter in epoch ms. */
export function notAfterOf(der: Uint8Array): number {
  return certOf(der).notAfter.getTime();
}

/**
 * Splits concatenated DER certificates (as the SPIFFE Workload API and SPIRE send bundles) into
 * one DER each. Throws `SyntaxError` when the bytes are not a sequence of DER SEQUENCEs.
 */
export function splitDerSequence(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < bytes.length) {
    if (bytes[i] !== 0x30 || i + 2 > bytes.length) {
      throw new SyntaxError(`Cannot split DER certificates: no SEQUENCE at byte ${i}`);
    }
    let len = bytes[i + 1]!;
    let header = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4 || i + 2 + n > bytes.length) {
        throw new SyntaxError(`Cannot split DER certificates: bad length at byte ${i}`);
      }
      len = 0;
      for (let k = 0; k < n; k++) len = len * 256 + bytes[i + 2 + k]!;
      header += n;
    }
    const end = i + header + len;
    if (end > bytes.length) {
      throw new SyntaxError(`Cannot split DER certificates: truncated at byte ${i}`);
    }
    out.push(bytes.slice(i, end));
    i = end;
  }
  return out;
}
