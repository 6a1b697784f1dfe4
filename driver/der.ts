/**
 * The DER reading the kernel answer needs without a full ASN.1 library: walk TLVs, cut a
 * certificate's issuer, subject and public key from the original bytes, read an RSA public key's
 * modulus and exponent.
 *
 * @module
 */

/** One DER element: tag, and where its value sits in the buffer. */
export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  offset: number;
  /** Offset of the first value byte. */
  start: number;
  /** Offset just after the value. */
  end: number;
}

/** Reads the element at `offset`; throws `SyntaxError` when the bytes are not DER. */
export function readTlv(der: Uint8Array, offset: number): Tlv {
  const tag = der[offset];
  let len = der[offset + 1];
  if (tag === undefined || len === undefined) throw new SyntaxError("Cannot read DER: truncated");
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new SyntaxError(`Cannot read DER: length of ${n} bytes`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (der[start + i] ?? 0);
    start += n;
  }
  const end = start + len;
  if (end > der.length) throw new SyntaxError("Cannot read DER: element runs past the end");
  return { tag, offset, start, end };
}

/** The children of a constructed element. */
export function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end;) {
    const t = readTlv(der, at);
    out.push(t);
    at = t.end;
  }
  return out;
}

/** AlgorithmIdentifier { rsaEncryption, NULL }. */
export const RSA_ALGORITHM = new Uint8Array([
  0x30,
  0x0d,
  0x06,
  0x09,
  0x2a,
  0x86,
  0x48,
  0x86,
  0xf7,
  0x0d,
  0x01,
  0x01,
  0x01,
  0x05,
  0x00,
]);

function unsigned(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return bytes.subarray(i);
}

/**
 * The DER of a certificate's issuer and subject Names and SubjectPublicKeyInfo, cut from the original bytes
 * (re-encoding could change string types, and the kernel compares subjects byte for byte).
 */
export function certificateParts(
  cert: Uint8Array,
): { issuer: Uint8Array; subject: Uint8Array; spki: Uint8Array } {
  const [tbs] = children(cert, readTlv(cert, 0));
  if (!tbs) throw new SyntaxError("Cannot read certificate: no TBSCertificate");
  const fields = children(cert, tbs);
  // [0] version is optional; then serial, signature, issuer, validity, subject, spki.
  const skip = fields[0]?.tag === 0xa0 ? 1 : 0;
  const issuer = fields[skip + 2];
  const subject = fields[skip + 4];
  const spki = fields[skip + 5];
  if (!issuer || !subject || !spki) {
    throw new SyntaxError("Cannot read certificate: TBSCertificate too short");
  }
  return {
    issuer: cert.subarray(issuer.offset, issuer.end),
    subject: cert.subarray(subject.offset, subject.end),
    spki: cert.subarray(spki.offset, spki.end),
  };
}

/**
 * Modulus and exponent (big-endian, no leading zeros) of an RSA `SubjectPublicKeyInfo`, or
 * `undefined` when the key is not RSA.
 */
export function rsaPublicNumbers(spki: Uint8Array): { n: Uint8Array; e: Uint8Array } | undefined {
  const outer = readTlv(spki, 0);
  const [alg, bits] = children(spki, outer);
  if (!alg || !bits || bits.tag !== 0x03) throw new SyntaxError("Cannot read public key: bad SPKI");
  const oid = readTlv(spki, alg.start);
  const rsaOid = RSA_ALGORITHM.subarray(4, 13);
  const got = spki.subarray(oid.start, oid.end);
  if (got.length !== rsaOid.length || got.some((b, i) => b !== rsaOid[i])) return undefined;
  // BIT STRING: one "unused bits" byte, then RSAPublicKey ::= SEQUENCE { n INTEGER, e INTEGER }.
  const key = readTlv(spki, bits.start + 1);
  const [n, e] = children(spki, key);
  if (!n || !e) throw new SyntaxError("Cannot read RSA public key: missing modulus or exponent");
  return { n: unsigned(spki.subarray(n.start, n.end)), e: unsigned(spki.subarray(e.start, e.end)) };
}
