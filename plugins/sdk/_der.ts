/**
 * The few DER operations the CA code needs without a full ASN.1 library: wrap a PKCS#1 RSA key
 * into PKCS#8, tell the key formats apart. Reading lives with the kernel answer (driver/der.ts).
 *
 * @module
 */
import { children, readTlv, RSA_ALGORITHM } from "../../driver/der.ts";

export {
  certificateParts,
  children,
  readTlv,
  rsaPublicNumbers,
  type Tlv,
} from "../../driver/der.ts";

function encodeLength(n: number): number[] {
  if (n < 0x80) return [n];
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return [0x80 | bytes.length, ...bytes];
}

/** Encodes one element. */
export function encodeTlv(tag: number, value: Uint8Array): Uint8Array {
  const head = [tag, ...encodeLength(value.length)];
  const out = new Uint8Array(head.length + value.length);
  out.set(head);
  out.set(value, head.length);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Wraps a PKCS#1 `RSAPrivateKey` in a PKCS#8 `PrivateKeyInfo` (what WebCrypto imports). */
export function pkcs1ToPkcs8(pkcs1: Uint8Array): Uint8Array {
  const version = new Uint8Array([0x02, 0x01, 0x00]);
  return encodeTlv(0x30, concat([version, RSA_ALGORITHM, encodeTlv(0x04, pkcs1)]));
}

/**
 * Tells a PKCS#8 `PrivateKeyInfo` (SEQUENCE { INTEGER, SEQUENCE alg, … }) from a PKCS#1
 * `RSAPrivateKey` (SEQUENCE { INTEGER, INTEGER n, … }) by the second element's tag.
 */
export function privateKeyFormat(der: Uint8Array): "pkcs8" | "pkcs1" {
  const outer = readTlv(der, 0);
  const [, second] = children(der, outer);
  if (outer.tag !== 0x30 || second === undefined) {
    throw new SyntaxError("Cannot read private key: not a DER SEQUENCE");
  }
  return second.tag === 0x30 ? "pkcs8" : "pkcs1";
}
