/**
 * The emulator's checks of the agent's answers, as the module reads them (protocol doc §4.3 and
 * "Observed on the real module"): standard base64, the leaf for the CSR's key, PKCS#1 v1.5
 * signatures (BearSSL cannot verify RSA-PSS), RSA trust anchors. A leaf that chains to an anchor
 * is "issued"; a well-formed leaf that does not is a "refusal" (it fails only that handshake).
 *
 * @module
 */
// @peculiar/x509 v2 resolves its crypto provider through tsyringe, which needs this polyfill first.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { csrAnswerProblem } from "../answers.ts";
import { decodeBase64Strict } from "../codec.ts";

/** Result of {@linkcode checkCsrAnswer}. */
export interface CsrAnswerCheck {
  /** `issued`: chains to a trust anchor; `refused`: well-formed but untrusted; `invalid`: problems. */
  kind: "issued" | "refused" | "invalid";
  problems: string[];
  leaf?: x509.X509Certificate;
  /** First URI SAN of the leaf. */
  spiffeId?: string;
  /** Number of trust anchors. */
  anchors: number;
}

const RSA_PSS = "1.2.840.113549.1.1.10";

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function b64url(bytes: Uint8Array): string {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  return btoa(String.fromCharCode(...bytes.subarray(start)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

interface Anchor {
  subject: Uint8Array;
  key?: CryptoKey;
}

async function importAnchors(list: unknown[], problems: string[]): Promise<Anchor[]> {
  const out: Anchor[] = [];
  for (const [i, a] of list.entries()) {
    const o = a as { rawSubject: string; publicKey: Record<string, unknown> };
    const subject = decodeBase64Strict(o.rawSubject)!;
    const n = decodeBase64Strict(String(o.publicKey["RSA_N"]))!;
    const e = decodeBase64Strict(String(o.publicKey["RSA_E"]))!;
    try {
      const key = await crypto.subtle.importKey(
        "jwk",
        { kty: "RSA", n: b64url(n), e: b64url(e), ext: true },
        { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
        true,
        ["verify"],
      );
      out.push({ subject, key });
    } catch (err) {
      problems.push(
        `trust_anchors[${i}].publicKey: not a usable RSA key (${(err as Error).message})`,
      );
      out.push({ subject });
    }
  }
  return out;
}

/**
 * Checks a `csr_sign` answer for a CSR whose public key is `csrSpki` (DER). `now` is for validity.
 */
export async function checkCsrAnswer(
  answer: string,
  csrSpki: Uint8Array,
  now: Date = new Date(),
): Promise<CsrAnswerCheck> {
  const shape = csrAnswerProblem(answer);
  if (shape) return { kind: "invalid", problems: [shape], anchors: 0 };
  const v = JSON.parse(answer) as {
    certificate: { raw: string };
    chain: { raw: string }[];
    trust_anchors: unknown[];
  };
  const problems: string[] = [];
  let leaf: x509.X509Certificate;
  const chain: x509.X509Certificate[] = [];
  try {
    leaf = new x509.X509Certificate(decodeBase64Strict(v.certificate.raw)!);
    for (const c of v.chain) chain.push(new x509.X509Certificate(decodeBase64Strict(c.raw)!));
  } catch (e) {
    return {
      kind: "invalid",
      problems: [`certificate: not DER X.509 (${(e as Error).message})`],
      anchors: 0,
    };
  }
  const result: CsrAnswerCheck = {
    kind: "invalid",
    problems,
    leaf,
    anchors: v.trust_anchors.length,
  };
  if (!bytesEqual(new Uint8Array(leaf.publicKey.rawData), csrSpki)) {
    problems.push(
      "certificate: public key differs from the CSR's (the module pairs it with its own key)",
    );
  }
  for (const [i, c] of [leaf, ...chain].entries()) {
    if (sigAlgOid(c) === RSA_PSS) {
      const where = i === 0 ? "certificate" : `chain[${i - 1}]`;
      problems.push(`${where}: RSA-PSS signature (BearSSL cannot verify it)`);
    }
  }
  const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
  const uri = san?.names.items.find((n) => n.type === "url");
  if (uri) result.spiffeId = uri.value;
  const anchors = await importAnchors(v.trust_anchors, problems);
  // Walk leaf → chain → anchor; each link must verify with PKCS#1 v1.5.
  const path = [leaf, ...chain];
  let trusted = true;
  for (let i = 0; i < path.length - 1; i++) {
    if (!await verifies(path[i]!, await path[i + 1]!.publicKey.export())) trusted = false;
  }
  const top = path[path.length - 1]!;
  const issuer = new Uint8Array(top.issuerName.toArrayBuffer());
  const anchor = anchors.find((a) => a.key && bytesEqual(a.subject, issuer));
  if (!anchor || !await verifies(top, anchor.key!)) trusted = false;
  if (trusted && leaf.notAfter <= now) {
    problems.push(`certificate: expired at ${leaf.notAfter.toISOString()}`);
  }
  result.kind = problems.length > 0 ? "invalid" : trusted ? "issued" : "refused";
  return result;
}

function sigAlgOid(c: x509.X509Certificate): string {
  // `asn` is protected in the typings but public at run time.
  return (c as unknown as { asn: { signatureAlgorithm: { algorithm: string } } }).asn
    .signatureAlgorithm.algorithm;
}

async function verifies(cert: x509.X509Certificate, key: CryptoKey): Promise<boolean> {
  if (sigAlgOid(cert) === RSA_PSS) return false;
  try {
    return await cert.verify({ publicKey: key, signatureOnly: true });
  } catch {
    return false;
  }
}

/** Result of {@linkcode checkAugmentAnswer}. */
export interface AugmentAnswerCheck {
  labels: string[];
  problems: string[];
}

/** Checks an augment answer: `{"labels":{"name=value":true,…}}`. */
export function checkAugmentAnswer(answer: string): AugmentAnswerCheck {
  let v: unknown;
  try {
    v = JSON.parse(answer);
  } catch (e) {
    return { labels: [], problems: [`not JSON (${(e as Error).message})`] };
  }
  const labels = (v as { labels?: unknown })?.labels;
  if (typeof labels !== "object" || labels === null || Array.isArray(labels)) {
    return { labels: [], problems: ["labels: missing or not an object"] };
  }
  const problems: string[] = [];
  for (const [k, val] of Object.entries(labels)) {
    if (val !== true) problems.push(`labels.${k}: expected true, got ${JSON.stringify(val)}`);
    if (k.indexOf("=") <= 0) problems.push(`labels.${k}: not name=value`);
  }
  return { labels: Object.keys(labels), problems };
}
