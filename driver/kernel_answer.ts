/**
 * The `csr_sign` answer camblet-driver reads (protocol doc §4.3), built exactly: the leaf, the
 * chain without the leaf, and the trust anchors as RSA modulus/exponent. Only these fields are sent;
 * base64 is standard and padded.
 *
 * @module
 */
import { CapabilityError } from "./errors.ts";
import { toBase64 } from "./base64.ts";
import { certificateParts, children, readTlv, rsaPublicNumbers } from "./der.ts";

/** A trust anchor as the kernel reads it. */
export interface KernelTrustAnchor {
  rawSubject: string;
  publicKey: { RSA_N: string; RSA_E: string };
}

/** The answer object (before `JSON.stringify`). */
export interface KernelCsrAnswer {
  certificate: { raw: string };
  chain: { raw: string }[];
  trust_anchors: KernelTrustAnchor[];
}

const NAME_KEYS: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
};

function oidText(der: Uint8Array, start: number, end: number): string {
  const out: number[] = [];
  let v = 0;
  for (let i = start; i < end; i++) {
    v = v * 128 + (der[i]! & 0x7f);
    if ((der[i]! & 0x80) === 0) {
      if (out.length === 0) out.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else out.push(v);
      v = 0;
    }
  }
  return out.join(".");
}

/**
 * `O=acme, CN=root` from a Name's DER, in its order (for messages only; read without an ASN.1
 * library, which costs the kernel worker ~20 MB).
 */
function subjectText(subject: Uint8Array): string {
  try {
    const dec = new TextDecoder();
    const parts: string[] = [];
    for (const rdn of children(subject, readTlv(subject, 0))) {
      for (const atv of children(subject, rdn)) {
        const [type, value] = children(subject, atv);
        const oid = oidText(subject, type!.start, type!.end);
        const text = dec.decode(subject.subarray(value!.start, value!.end));
        parts.push(`${NAME_KEYS[oid] ?? oid}=${text}`);
      }
    }
    return parts.join(", ");
  } catch {
    return "(unreadable subject)";
  }
}

/**
 * Converts a DER root into the kernel's anchor form. Throws {@linkcode CapabilityError} for a
 * non-RSA key: the module treats every anchor as RSA and then fails every handshake (BearSSL 62).
 *
 * @example
 * ```ts
 * import { kernelTrustAnchor } from "./kernel_answer.ts";
 * import { parsePem } from "../tests/fakes/test_pki.ts";
 * const [root] = parsePem(await Deno.readTextFile(
 *   "tests/testdata/camblet-driver/pki/root-ca-rsa.pem",
 * ));
 * kernelTrustAnchor(root!.der).publicKey.RSA_E; // "AQAB"
 * ```
 */
export function kernelTrustAnchor(der: Uint8Array): KernelTrustAnchor {
  const { subject, spki } = certificateParts(der);
  const rsa = rsaPublicNumbers(spki);
  if (!rsa) {
    throw new CapabilityError(
      `Cannot use trust anchor "${
        subjectText(subject)
      }" with camblet-driver: its key is not RSA, and the kernel module verifies only RSA trust anchors (every handshake would fail with BearSSL error 62); use an RSA root`,
    );
  }
  return {
    rawSubject: toBase64(subject),
    publicKey: { RSA_N: toBase64(rsa.n), RSA_E: toBase64(rsa.e) },
  };
}

/** Converts anchors once: the same roots come back with every signature. */
export class TrustAnchorCache {
  #cache = new Map<string, KernelTrustAnchor>();

  /** The kernel form of `der`; throws like {@linkcode kernelTrustAnchor}. */
  get(der: Uint8Array): KernelTrustAnchor {
    const key = toBase64(der);
    let anchor = this.#cache.get(key);
    if (!anchor) {
      anchor = kernelTrustAnchor(der);
      if (this.#cache.size > 64) this.#cache.clear();
      this.#cache.set(key, anchor);
    }
    return anchor;
  }
}

/**
 * Serialises the answer string (what goes in the `answer` field).
 *
 * @example
 * ```ts
 * import { kernelCsrAnswer } from "./kernel_answer.ts";
 * const anchor = { rawSubject: "MAA=", publicKey: { RSA_N: "AQ==", RSA_E: "AQAB" } };
 * kernelCsrAnswer(new Uint8Array([1]), [], [anchor]);
 * // '{"certificate":{"raw":"AQ=="},"chain":[],"trust_anchors":[…]}'
 * ```
 */
export function kernelCsrAnswer(
  leaf: Uint8Array,
  chain: readonly Uint8Array[],
  anchors: readonly KernelTrustAnchor[],
): string {
  const answer: KernelCsrAnswer = {
    certificate: { raw: toBase64(leaf) },
    chain: chain.map((c) => ({ raw: toBase64(c) })),
    trust_anchors: [...anchors],
  };
  return JSON.stringify(answer);
}
