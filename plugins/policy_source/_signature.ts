/**
 * OPA bundle signatures (`.signatures.json`), verified the way OPA does: exactly one compact JWS
 * whose payload lists every file of the bundle with its digest (`{"files":[{"name","hash",
 * "algorithm"}],"keyid","scope"}`). Structured files (`data.json`, `.manifest`) are hashed in
 * OPA's canonical form (object keys sorted, no whitespace, numbers as written), every other file
 * byte for byte. A file missing from the signature, a file listed but absent, a wrong digest, a
 * bad JWS signature or a different scope refuses the bundle.
 *
 * @module
 */
import { createHash, createPublicKey } from "node:crypto";
// Type-only: jose loads when a signed bundle is first verified, not with every policy source.
import type * as jose from "jose";
import { RefusedContentError } from "./_safety.ts";
import type { TarEntry } from "./_tar.ts";

/** How bundles must be signed. */
export interface VerificationOptions {
  /** PEM public key (SPKI, PKCS#1 or a certificate), or the shared secret for HS256/384/512. */
  key: string;
  /** JWS algorithm (OPA's default: RS256). */
  algorithm: string;
  /** When set, the JWS `kid` (or the payload's `keyid`) must be this. */
  keyId?: string;
  /** Must equal the payload's `scope` (both empty by default). */
  scope?: string;
  /** Bundle paths not checked (OPA's `exclude_files`), `*` globs within one segment. */
  exclude?: string[];
}

/** The name of the signatures file in a bundle. */
export const SIGNATURES_FILE = ".signatures.json";

const HASHES: Record<string, string> = {
  "MD5": "md5",
  "SHA-1": "sha1",
  "SHA-224": "sha224",
  "SHA-256": "sha256",
  "SHA-384": "sha384",
  "SHA-512": "sha512",
  "SHA-512-224": "sha512-224",
  "SHA-512-256": "sha512-256",
};

/** Whether OPA hashes `path` as a structured (JSON) document. */
export function isStructured(path: string): boolean {
  const base = path.slice(path.lastIndexOf("/") + 1);
  return base === "data.json" || base === ".manifest" || base === "data.yaml" ||
    base === "data.yml";
}

class NumberLiteral {
  constructor(readonly text: string) {}
}

/** Go's json string encoding with HTML escaping off (what OPA's hasher writes). */
function goString(s: string): string {
  return JSON.stringify(s).replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/** Orders keys as Go sorts strings: by UTF-8 bytes, i.e. by code point. */
function byCodePoint(a: string, b: string): number {
  const x = [...a], y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function canonical(v: unknown, out: string[]): void {
  if (v instanceof NumberLiteral) out.push(v.text);
  else if (Array.isArray(v)) {
    out.push("[");
    v.forEach((e, i) => (i > 0 && out.push(","), canonical(e, out)));
    out.push("]");
  } else if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    out.push("{");
    Object.keys(o).sort(byCodePoint).forEach((k, i) => {
      if (i > 0) out.push(",");
      out.push(goString(k), ":");
      canonical(o[k], out);
    });
    out.push("}");
  } else out.push(typeof v === "string" ? goString(v) : JSON.stringify(v));
}

/**
 * OPA's canonical form of a JSON document: keys sorted, no whitespace, numbers as written.
 *
 * @example
 * ```ts
 * import { canonicalJson } from "./_signature.ts";
 * canonicalJson('{"b": 1.0, "a": [true, "x"]}'); // '{"a":[true,"x"],"b":1.0}'
 * ```
 */
export function canonicalJson(text: string): string {
  const value = JSON.parse(text, function (_k, v, ctx?: { source?: string }) {
    return typeof v === "number" && ctx?.source !== undefined ? new NumberLiteral(ctx.source) : v;
  });
  const out: string[] = [];
  canonical(value, out);
  return out.join("");
}

/** The hex digest OPA computes for a bundle file. */
export function fileDigest(path: string, data: Uint8Array, algorithm: string): string {
  const hash = HASHES[algorithm];
  if (!hash) {
    throw new RefusedContentError(
      `bundle signature uses unsupported hashing algorithm ${
        JSON.stringify(algorithm)
      } for ${path}`,
      { file: path },
    );
  }
  const h = createHash(hash);
  if (!isStructured(path)) return h.update(data).digest("hex");
  if (!path.endsWith(".json") && !path.endsWith(".manifest")) {
    throw new RefusedContentError("signed YAML data files are not supported; use data.json", {
      file: path,
    });
  }
  let text: string;
  try {
    text = canonicalJson(new TextDecoder("utf-8", { fatal: true }).decode(data));
  } catch (e) {
    throw new RefusedContentError(`cannot read as JSON: ${(e as Error).message}`, { file: path });
  }
  return h.update(text).digest("hex");
}

function globRegExp(glob: string): RegExp {
  const body = glob.split("").map((c) =>
    c === "*" ? "[^/]*" : c === "?" ? "[^/]" : c.replace(/[.+^${}()|[\]\\]/g, "\\$&")
  ).join("");
  return new RegExp(`^${body}$`);
}

async function verificationKey(o: VerificationOptions): Promise<CryptoKey | Uint8Array> {
  if (/^HS(256|384|512)$/.test(o.algorithm)) return new TextEncoder().encode(o.key);
  const jose = await import("jose");
  try {
    if (o.key.includes("BEGIN CERTIFICATE")) return await jose.importX509(o.key, o.algorithm);
    const spki = createPublicKey(o.key).export({ type: "spki", format: "pem" }).toString();
    return await jose.importSPKI(spki, o.algorithm);
  } catch (e) {
    throw new TypeError(
      `Cannot use the bundle verification key for ${o.algorithm}: ${(e as Error).message}`,
    );
  }
}

interface SignedFile {
  name: string;
  hash: string;
  algorithm: string;
}

function refuse(message: string): never {
  throw new RefusedContentError(`bundle signature: ${message}`, { file: SIGNATURES_FILE });
}

async function verifiedPayload(token: string, o: VerificationOptions) {
  const jose = await import("jose");
  let header: jose.ProtectedHeaderParameters;
  try {
    header = jose.decodeProtectedHeader(token);
  } catch (e) {
    refuse(`cannot read the JWS: ${(e as Error).message}`);
  }
  let result;
  try {
    result = await jose.compactVerify(token, await verificationKey(o), {
      algorithms: [o.algorithm],
    });
  } catch (e) {
    if (e instanceof TypeError) throw e;
    refuse(`the JWS does not verify with the configured key: ${(e as Error).message}`);
  }
  let payload: { files?: unknown; keyid?: unknown; scope?: unknown };
  try {
    payload = JSON.parse(new TextDecoder().decode(result.payload));
  } catch (e) {
    refuse(`the JWS payload is not JSON: ${(e as Error).message}`);
  }
  const kid = header.kid ?? (typeof payload.keyid === "string" ? payload.keyid : undefined);
  if (o.keyId !== undefined && kid !== undefined && kid !== o.keyId) {
    refuse(`signed with key id ${JSON.stringify(kid)}, expected ${JSON.stringify(o.keyId)}`);
  }
  const scope = typeof payload.scope === "string" ? payload.scope : "";
  if (scope !== (o.scope ?? "")) {
    refuse(`scope ${JSON.stringify(scope)} does not match ${JSON.stringify(o.scope ?? "")}`);
  }
  if (!Array.isArray(payload.files)) refuse('the payload has no "files" list');
  const files = new Map<string, SignedFile>();
  for (const f of payload.files as unknown[]) {
    const e = f as Partial<SignedFile> | null;
    if (typeof e?.name !== "string" || typeof e.hash !== "string") {
      refuse(`a "files" entry is not {name, hash, algorithm}: ${JSON.stringify(f)}`);
    }
    files.set(e.name.replace(/^\//, ""), {
      name: e.name,
      hash: e.hash.toLowerCase(),
      algorithm: e.algorithm ?? "",
    });
  }
  return files;
}

/**
 * Verifies a bundle's `.signatures.json` against its other files. Throws
 * {@linkcode RefusedContentError} saying what does not match; `TypeError` for an unusable key.
 */
export async function verifyBundle(
  signatures: Uint8Array,
  entries: readonly TarEntry[],
  options: VerificationOptions,
): Promise<void> {
  let doc: { signatures?: unknown };
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(signatures));
  } catch (e) {
    refuse(`${SIGNATURES_FILE} is not JSON: ${(e as Error).message}`);
  }
  const tokens = doc.signatures;
  if (!Array.isArray(tokens) || tokens.length === 0) refuse("missing JWT (expected exactly one)");
  if (tokens.length > 1) refuse("multiple JWTs are not supported (expected exactly one)");
  if (typeof tokens[0] !== "string") refuse("the JWT is not a string");
  const files = await verifiedPayload(tokens[0], options);
  const excluded = (options.exclude ?? []).map(globRegExp);
  for (const e of entries) {
    if (e.path === SIGNATURES_FILE) continue;
    if (excluded.some((r) => r.test(e.path))) {
      files.delete(e.path);
      continue;
    }
    const signed = files.get(e.path);
    if (!signed) refuse(`file ${e.path} is not included in the bundle signature`);
    if (!signed.algorithm) refuse(`no hashing algorithm given for ${e.path}`);
    const digest = fileDigest(e.path, e.data, signed.algorithm);
    if (digest !== signed.hash) {
      throw new RefusedContentError(
        `bundle signature: digest mismatch (signed ${signed.hash}, got ${digest})`,
        { file: e.path },
      );
    }
    files.delete(e.path);
  }
  if (files.size > 0) {
    refuse(`file(s) ${[...files.keys()].join(", ")} signed but not found in the bundle`);
  }
}
