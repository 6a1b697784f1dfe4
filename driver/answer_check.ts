/**
 * Checks a `csr_sign` answer the way camblet-driver and BearSSL would use it: the shape of protocol
 * doc §4.3 (standard padded base64, a `chain` array, RSA anchors), certificates that parse, no
 * RSA-PSS, and whether the leaf chains to an anchor using only the anchor's modulus/exponent (what
 * tells an issued certificate from a refusal certificate). For tests, conformance and the emulator.
 *
 * @module
 */
import { fromBase64 } from "./base64.ts";
import { certificateParts } from "./der.ts";
import { x509 } from "./x509.ts";

/** Result of {@linkcode checkKernelAnswer}. */
export interface AnswerCheck {
  /** Shape problems: the kernel could not use the answer. Empty when well formed. */
  problems: string[];
  /** The leaf chains to one of the answer's anchors (false for a refusal certificate). */
  trusted: boolean;
  /** Why it is not trusted. */
  untrustedReason?: string;
  leaf?: x509.X509Certificate;
  chain: x509.X509Certificate[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function b64(v: unknown, path: string, problems: string[]): Uint8Array | undefined {
  if (typeof v !== "string" || v === "") {
    problems.push(`${path}: missing or not a string`);
    return undefined;
  }
  try {
    return fromBase64(v);
  } catch {
    problems.push(`${path}: not standard padded base64 without newlines`);
    return undefined;
  }
}

function cert(der: Uint8Array | undefined, path: string, problems: string[]) {
  if (!der) return undefined;
  try {
    const c = new x509.X509Certificate(der.slice().buffer as ArrayBuffer);
    if (c.signatureAlgorithm.name === "RSA-PSS") {
      problems.push(`${path}: signed with RSA-PSS, which the kernel's BearSSL cannot verify`);
    }
    return c;
  } catch (e) {
    problems.push(`${path}: not a DER certificate (${(e as Error).message})`);
    return undefined;
  }
}

const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

interface Anchor {
  subject: Uint8Array;
  n: Uint8Array;
  e: Uint8Array;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function verifiedByAnchor(c: x509.X509Certificate, a: Anchor): Promise<boolean> {
  try {
    const key = await crypto.subtle.importKey(
      "jwk",
      { kty: "RSA", n: b64url(a.n), e: b64url(a.e) },
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
      false,
      ["verify"],
    );
    return await c.verify({ publicKey: key, signatureOnly: true });
  } catch {
    return false;
  }
}

/**
 * Checks an answer string. `now` (epoch ms) also checks validity periods, as BearSSL does.
 *
 * @example
 * ```ts
 * import { checkKernelAnswer } from "./answer_check.ts";
 * const r = await checkKernelAnswer('{"certificate":{}}');
 * r.problems; // ["certificate.raw: missing or not a string", "chain: …", "trust_anchors: …"]
 * ```
 */
export async function checkKernelAnswer(
  answer: string,
  options: { now?: number } = {},
): Promise<AnswerCheck> {
  const problems: string[] = [];
  const out: AnswerCheck = { problems, trusted: false, chain: [] };
  let v: unknown;
  try {
    v = JSON.parse(answer);
  } catch (e) {
    problems.push(`not JSON (${(e as Error).message})`);
    return out;
  }
  if (!isObject(v)) {
    problems.push("not a JSON object");
    return out;
  }
  if ("error" in v) problems.push('has an "error" field: a csr_sign error crashes the module');
  const certificate = v["certificate"];
  if (!isObject(certificate)) problems.push("certificate: missing or not an object");
  else {
    const leaf = cert(
      b64(certificate["raw"], "certificate.raw", problems),
      "certificate",
      problems,
    );
    if (leaf) out.leaf = leaf;
  }
  const chain = v["chain"];
  if (!Array.isArray(chain)) problems.push("chain: missing or not an array");
  else {
    for (const [i, c] of chain.entries()) {
      if (!isObject(c)) {
        problems.push(`chain[${i}]: not an object`);
        continue;
      }
      const parsed = cert(b64(c["raw"], `chain[${i}].raw`, problems), `chain[${i}]`, problems);
      if (parsed) out.chain.push(parsed);
    }
  }
  const anchorsIn = v["trust_anchors"];
  const anchors: Anchor[] = [];
  if (!Array.isArray(anchorsIn) || anchorsIn.length === 0) {
    problems.push("trust_anchors: missing or empty");
  } else {
    for (const [i, a] of anchorsIn.entries()) {
      const p = `trust_anchors[${i}]`;
      if (!isObject(a)) {
        problems.push(`${p}: not an object`);
        continue;
      }
      const subject = b64(a["rawSubject"], `${p}.rawSubject`, problems);
      if (subject) {
        try {
          new x509.Name(subject.slice().buffer as ArrayBuffer);
        } catch {
          problems.push(`${p}.rawSubject: not a DER Name`);
        }
      }
      const key = a["publicKey"];
      if (!isObject(key)) {
        problems.push(`${p}.publicKey: missing or not an object`);
        continue;
      }
      const n = b64(key["RSA_N"], `${p}.publicKey.RSA_N`, problems);
      const e = b64(key["RSA_E"], `${p}.publicKey.RSA_E`, problems);
      if (subject && n && e) anchors.push({ subject, n, e });
    }
  }
  if (problems.length > 0 || !out.leaf) return out;
  await checkTrust(out, anchors, options.now);
  return out;
}

async function checkTrust(out: AnswerCheck, anchors: Anchor[], now: number | undefined) {
  const path = [out.leaf!, ...out.chain];
  for (const [i, c] of path.entries()) {
    if (now !== undefined && (now < c.notBefore.getTime() || now > c.notAfter.getTime())) {
      out.untrustedReason = `${i === 0 ? "leaf" : `chain[${i - 1}]`} is not valid at ${
        new Date(now).toISOString()
      }`;
      return;
    }
    const next = path[i + 1];
    if (next && !(await c.verify({ publicKey: next.publicKey, signatureOnly: true }))) {
      out.untrustedReason = `${
        i === 0 ? "leaf" : `chain[${i - 1}]`
      } is not signed by the next certificate`;
      return;
    }
  }
  const top = path[path.length - 1]!;
  const { issuer } = certificateParts(new Uint8Array(top.rawData));
  for (const a of anchors) {
    if (equalBytes(a.subject, issuer) && await verifiedByAnchor(top, a)) {
      out.trusted = true;
      return;
    }
  }
  out.untrustedReason = `no trust anchor signed "${top.subject}" (issuer "${top.issuer}")`;
}
