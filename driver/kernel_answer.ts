/**
 * The `csr_sign` answer camblet-driver reads (protocol doc §4.3), built exactly: the leaf, the
 * chain without the leaf, and the trust anchors as RSA modulus/exponent. Only these fields are sent;
 * base64 is standard and padded.
 *
 * @module
 */
import { CapabilityError } from "./errors.ts";
import { toBase64 } from "./base64.ts";
import { certificateParts, rsaPublicNumbers } from "./der.ts";
import { x509 } from "./x509.ts";

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

function subjectText(subject: Uint8Array): string {
  try {
    return new x509.Name(subject.slice().buffer as ArrayBuffer).toString();
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
