/**
 * The issuance fast path in DER, without a general ASN.1 library: read a PKCS#10 request once
 * (its signed bytes, subject, key and SANs, cut from the original bytes), verify it with WebCrypto,
 * build a workload leaf's TBSCertificate directly, and read back the few fields the identity
 * manager checks in a CA's answer. Under a burst the pure-JS ASN.1 parse and build cost several
 * times the native RSA signature; these cost microseconds.
 *
 * @module
 */
import { children, readTlv, type Tlv } from "./_der.ts";

/** A CSR read by {@linkcode readCsrDer}: parts are views into `der`. */
export interface CsrDer {
  der: Uint8Array;
  /** CertificationRequestInfo: the signed bytes. */
  info: Uint8Array;
  /** Subject Name. */
  subject: Uint8Array;
  /** SubjectPublicKeyInfo. */
  spki: Uint8Array;
  /** Dotted OID of the signature algorithm. */
  signatureAlgorithm: string;
  signature: Uint8Array;
  uris: string[];
  dnsNames: string[];
  /** Other SAN types (`ip:…`, `email:…`, `other`). */
  others: string[];
}

const OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14";
const OID_SAN = "2.5.29.17";
const OID_RSA = "1.2.840.113549.1.1.1";
/** PKCS#1 v1.5 signature OIDs → hash. */
const RSA_SIG_HASH: Record<string, string> = {
  "1.2.840.113549.1.1.11": "SHA-256",
  "1.2.840.113549.1.1.12": "SHA-384",
  "1.2.840.113549.1.1.13": "SHA-512",
};
/** The OID a caller must refuse in a leaf: BearSSL in the kernel cannot verify it. */
export const OID_RSA_PSS = "1.2.840.113549.1.1.10";

const latin1 = new TextDecoder("latin1");

/** Dotted form of an OBJECT IDENTIFIER's value bytes. */
export function oidText(der: Uint8Array, t: Tlv): string {
  const out: number[] = [];
  let v = 0;
  for (let i = t.start; i < t.end; i++) {
    const b = der[i]!;
    v = v * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      if (out.length === 0) out.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else out.push(v);
      v = 0;
    }
  }
  return out.join(".");
}

function expect(_der: Uint8Array, t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) {
    throw new SyntaxError(`Cannot read ${what}: expected tag 0x${tag.toString(16)}`);
  }
  return t;
}

function bitString(der: Uint8Array, t: Tlv): Uint8Array {
  return der.subarray(t.start + 1, t.end);
}

/** SAN GeneralNames → uris, dnsNames, others. */
function readSans(der: Uint8Array, names: Tlv, out: Pick<CsrDer, "uris" | "dnsNames" | "others">) {
  for (const n of children(der, names)) {
    const text = () => latin1.decode(der.subarray(n.start, n.end));
    if (n.tag === 0x86) out.uris.push(text());
    else if (n.tag === 0x82) out.dnsNames.push(text());
    else if (n.tag === 0x81) out.others.push(`email:${text()}`);
    else if (n.tag === 0x87) out.others.push(`ip:${[...der.subarray(n.start, n.end)].join(".")}`);
    else out.others.push(`other:${n.tag.toString(16)}`);
  }
}

/** The SAN extension's GeneralNames among `Extensions` (a SEQUENCE of Extension). */
function sanOf(der: Uint8Array, extensions: Tlv): Tlv | undefined {
  for (const ext of children(der, extensions)) {
    const parts = children(der, ext);
    if (oidText(der, expect(der, parts[0], 0x06, "extension")) !== OID_SAN) continue;
    const value = expect(der, parts[parts.length - 1], 0x04, "SAN extension");
    return readTlv(der, value.start);
  }
  return undefined;
}

const csrCache = new WeakMap<Uint8Array, CsrDer>();

/**
 * Reads a PKCS#10 request (DER). The same `der` object is read once: a caller that passes it on
 * (the identity manager to the CA) does not pay again. Throws `SyntaxError` saying why.
 */
export function readCsrDer(der: Uint8Array): CsrDer {
  const known = csrCache.get(der);
  if (known) return known;
  try {
    const outer = expect(der, readTlv(der, 0), 0x30, "CSR");
    if (outer.end !== der.length) throw new SyntaxError("Cannot read CSR: trailing bytes");
    const [infoT, algT, sigT] = children(der, outer);
    const info = expect(der, infoT, 0x30, "CertificationRequestInfo");
    const [, subjectT, spkiT, attrsT] = children(der, info);
    const subject = expect(der, subjectT, 0x30, "CSR subject");
    const spki = expect(der, spkiT, 0x30, "CSR public key");
    const alg = children(der, expect(der, algT, 0x30, "CSR signature algorithm"));
    const out: CsrDer = {
      der,
      info: der.subarray(info.offset, info.end),
      subject: der.subarray(subject.offset, subject.end),
      spki: der.subarray(spki.offset, spki.end),
      signatureAlgorithm: oidText(der, expect(der, alg[0], 0x06, "CSR signature algorithm")),
      signature: bitString(der, expect(der, sigT, 0x03, "CSR signature")),
      uris: [],
      dnsNames: [],
      others: [],
    };
    if (attrsT && attrsT.tag === 0xa0) {
      for (const attr of children(der, attrsT)) {
        const [typeT, valuesT] = children(der, attr);
        if (oidText(der, expect(der, typeT, 0x06, "CSR attribute")) !== OID_EXTENSION_REQUEST) {
          continue;
        }
        for (const exts of children(der, expect(der, valuesT, 0x31, "extensionRequest"))) {
          const san = sanOf(der, exts);
          if (san) readSans(der, san, out);
        }
      }
    }
    csrCache.set(der, out);
    return out;
  } catch (e) {
    throw new SyntaxError(`Cannot parse CSR: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The RSA key in an SPKI, or undefined for another key type. */
function isRsaSpki(spki: Uint8Array): boolean {
  try {
    const [algT] = children(spki, readTlv(spki, 0));
    const [oid] = children(spki, algT!);
    return oidText(spki, oid!) === OID_RSA;
  } catch {
    return false;
  }
}

const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
// The kernel uses one key for every CSR: import it once per hash (bounded: keys come from CSRs).
const verifyKeys = new Map<string, Promise<CryptoKey>>();

/**
 * Verifies an RSA PKCS#1 v1.5 CSR's self-signature natively; undefined when the algorithm is not
 * one this fast path handles (the caller then uses the general path).
 */
export function verifyCsrDer(csr: CsrDer): Promise<boolean | undefined> {
  // Read once, verified once: the identity manager verifies and the CA it passes the same bytes
  // object to (read through the cache above) does not pay a second signature check.
  let known = verified.get(csr);
  if (!known) verified.set(csr, known = verifyOnce(csr));
  return known;
}

const verified = new WeakMap<CsrDer, Promise<boolean | undefined>>();

async function verifyOnce(csr: CsrDer): Promise<boolean | undefined> {
  const hash = RSA_SIG_HASH[csr.signatureAlgorithm];
  if (!hash || !isRsaSpki(csr.spki)) return undefined;
  const id = `${hash} ${b64(csr.spki)}`;
  let key = verifyKeys.get(id);
  if (!key) {
    key = crypto.subtle.importKey(
      "spki",
      csr.spki.slice(),
      { name: "RSASSA-PKCS1-v1_5", hash },
      false,
      ["verify"],
    );
    if (verifyKeys.size >= 64) verifyKeys.clear();
    verifyKeys.set(id, key);
    key.catch(() => verifyKeys.delete(id));
  }
  try {
    return await crypto.subtle.verify(
      "RSASSA-PKCS1-v1_5",
      await key,
      csr.signature.slice(),
      csr.info.slice(),
    );
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Building

function lengthBytes(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

/** One TLV around the concatenated `parts`. */
export function tlv(tag: number, ...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let len = 0;
  for (const p of parts) len += p.length;
  const head = lengthBytes(len);
  const out = new Uint8Array(1 + head.length + len);
  out[0] = tag;
  out.set(head, 1);
  let at = 1 + head.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const enc = new TextEncoder();
const bytes = (...b: number[]) => new Uint8Array(b);

function oidBytes(dotted: string): Uint8Array {
  const [a, b, ...rest] = dotted.split(".").map(Number);
  const out = [a! * 40 + b!];
  for (const n of rest) {
    const group: number[] = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) {
      group.unshift(0x80 | (v & 0x7f));
    }
    out.push(...group);
  }
  return tlv(0x06, new Uint8Array(out));
}

/** UTCTime before 2050, GeneralizedTime after (RFC 5280 §4.1.2.5), whole seconds. */
function timeDer(d: Date): Uint8Array {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const y = d.getUTCFullYear();
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}` +
    `${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return y >= 1950 && y < 2050
    ? tlv(0x17, enc.encode(`${p(y % 100)}${rest}`))
    : tlv(0x18, enc.encode(`${p(y, 4)}${rest}`));
}

function extension(oid: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical
    ? tlv(0x30, oidBytes(oid), bytes(0x01, 0x01, 0xff), tlv(0x04, value))
    : tlv(0x30, oidBytes(oid), tlv(0x04, value));
}

// basicConstraints CA:FALSE (critical), keyUsage digitalSignature+keyEncipherment (critical),
// extKeyUsage serverAuth+clientAuth: what issueLeaf (x509.ts) puts in every workload leaf.
const LEAF_EXTENSIONS = [
  extension("2.5.29.19", true, tlv(0x30)),
  extension("2.5.29.15", true, bytes(0x03, 0x02, 0x05, 0xa0)),
  extension(
    "2.5.29.37",
    false,
    tlv(0x30, oidBytes("1.3.6.1.5.5.7.3.1"), oidBytes("1.3.6.1.5.5.7.3.2")),
  ),
];

/** AlgorithmIdentifier of PKCS#1 v1.5 with `hash` (`SHA-256`…), as a CA's RSA key signs. */
export function rsaSignatureAlgorithm(hash: string): Uint8Array {
  const oid = Object.entries(RSA_SIG_HASH).find(([, h]) => h === hash)?.[0];
  if (!oid) throw new RangeError(`Cannot sign with RSA and ${hash}`);
  return tlv(0x30, oidBytes(oid), bytes(0x05, 0x00));
}

/** What {@linkcode leafTbs} puts in a workload leaf. */
export interface LeafTbsOptions {
  /** 20 random bytes, top bit clear (x509.ts randomSerial). */
  serial: Uint8Array;
  signatureAlgorithm: Uint8Array;
  /** The issuer's subject Name, DER. */
  issuer: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** Subject Name, DER (the CSR's, byte for byte). */
  subject: Uint8Array;
  spki: Uint8Array;
  uris?: readonly string[];
  dnsNames?: readonly string[];
  /** The authorityKeyIdentifier Extension, DER (computed once per issuer key). */
  authorityKeyId?: Uint8Array;
  /** Leave out basicConstraints/keyUsage/extKeyUsage (refusal certificates carry none). */
  bare?: boolean;
}

/** A TBSCertificate (v3) with the same extensions as x509.ts `issueLeaf`. */
export function leafTbs(o: LeafTbsOptions): Uint8Array<ArrayBuffer> {
  const exts: Uint8Array[] = o.bare ? [] : [...LEAF_EXTENSIONS];
  if (o.authorityKeyId) exts.push(o.authorityKeyId);
  const names = [
    ...(o.uris ?? []).map((u) => tlv(0x86, enc.encode(u))),
    ...(o.dnsNames ?? []).map((d) => tlv(0x82, enc.encode(d))),
  ];
  // RFC 5280 §4.2.1.6: SANs are critical when the subject is empty.
  const emptySubject = o.subject.length === 2;
  if (names.length > 0) exts.push(extension(OID_SAN, emptySubject, tlv(0x30, ...names)));
  return tlv(
    0x30,
    bytes(0xa0, 0x03, 0x02, 0x01, 0x02),
    tlv(0x02, o.serial),
    o.signatureAlgorithm,
    o.issuer,
    tlv(0x30, timeDer(o.notBefore), timeDer(o.notAfter)),
    o.subject,
    o.spki,
    ...(exts.length > 0 ? [tlv(0xa3, tlv(0x30, ...exts))] : []),
  );
}

/** Certificate ::= SEQUENCE { tbs, signatureAlgorithm, BIT STRING signature }. */
export function certificateDer(
  tbs: Uint8Array,
  signatureAlgorithm: Uint8Array,
  signature: Uint8Array,
): Uint8Array<ArrayBuffer> {
  return tlv(0x30, tbs, signatureAlgorithm, tlv(0x03, bytes(0), signature));
}

/** A random serial as {@linkcode LeafTbsOptions.serial} wants it, and its hex. */
export function randomSerialBytes(): Uint8Array {
  const b = crypto.getRandomValues(new Uint8Array(20));
  b[0] = (b[0]! & 0x7f) | 0x40;
  return b;
}

// ---------------------------------------------------------------------------------------------
// Reading a certificate

/** The fields of a certificate the identity manager checks. */
export interface CertificateFacts {
  serialHex: string;
  signatureAlgorithm: string;
  spki: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  uris: string[];
}

function readTime(der: Uint8Array, t: Tlv): Date {
  const s = latin1.decode(der.subarray(t.start, t.end));
  const m = t.tag === 0x17
    ? /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s)
    : /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s);
  if (!m) throw new SyntaxError(`Cannot read certificate time "${s}"`);
  let year = Number(m[1]);
  if (t.tag === 0x17) year += year < 50 ? 2000 : 1900;
  return new Date(
    Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])),
  );
}

/** Reads {@linkcode CertificateFacts}; throws `SyntaxError` for bytes that are not a certificate. */
export function readCertificateFacts(der: Uint8Array): CertificateFacts {
  const outer = expect(der, readTlv(der, 0), 0x30, "certificate");
  if (outer.end !== der.length) throw new SyntaxError("Cannot read certificate: trailing bytes");
  const [tbsT, algT] = children(der, outer);
  const tbs = children(der, expect(der, tbsT, 0x30, "TBSCertificate"));
  let i = tbs[0]?.tag === 0xa0 ? 1 : 0;
  const serial = expect(der, tbs[i++], 0x02, "serial");
  i++; // signature algorithm (inner)
  i++; // issuer
  const validity = children(der, expect(der, tbs[i++], 0x30, "validity"));
  i++; // subject
  const spki = expect(der, tbs[i++], 0x30, "public key");
  const facts: CertificateFacts = {
    serialHex: [...der.subarray(serial.start, serial.end)]
      .map((b) => b.toString(16).padStart(2, "0")).join(""),
    signatureAlgorithm: oidText(
      der,
      expect(der, children(der, expect(der, algT, 0x30, "signature algorithm"))[0], 0x06, "alg"),
    ),
    spki: der.subarray(spki.offset, spki.end),
    notBefore: readTime(der, validity[0]!),
    notAfter: readTime(der, validity[1]!),
    uris: [],
  };
  for (; i < tbs.length; i++) {
    if (tbs[i]!.tag !== 0xa3) continue;
    const san = sanOf(der, readTlv(der, tbs[i]!.start));
    if (san) {
      const names = { uris: facts.uris, dnsNames: [], others: [] };
      readSans(der, san, names);
    }
  }
  return facts;
}
