/**
 * CA key handling with WebCrypto: generate, import (PKCS#8; PKCS#1 as the Camblet Go agent wrote
 * it under a `PRIVATE KEY` label), export PKCS#8, and match a key to a certificate.
 *
 * @module
 */
import { pkcs1ToPkcs8, privateKeyFormat } from "./_der.ts";
import type { PemBlock } from "./pem.ts";

/** A CA signing key with its public half. */
export interface KeyPair {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

/** RSA keys sign with PKCS#1 v1.5 and SHA-256: the only RSA scheme camblet-driver verifies. */
export const RSA_SIGNING: RsaHashedImportParams = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };

const EC_CURVES = ["P-256", "P-384"] as const;

/**
 * Generates an RSA key pair (exponent 65537) for a CA.
 *
 * @example
 * ```ts
 * import { generateRsaKeyPair } from "./keys.ts";
 * const keys = await generateRsaKeyPair(2048);
 * keys.privateKey.algorithm.name; // "RSASSA-PKCS1-v1_5"
 * ```
 */
export async function generateRsaKeyPair(modulusLength = 2048): Promise<KeyPair> {
  if (![2048, 3072, 4096].includes(modulusLength)) {
    throw new RangeError(
      `Cannot generate RSA key: size ${modulusLength} is not 2048, 3072 or 4096`,
    );
  }
  return await crypto.subtle.generateKey(
    { ...RSA_SIGNING, modulusLength, publicExponent: new Uint8Array([1, 0, 1]) },
    true,
    ["sign", "verify"],
  ) as CryptoKeyPair;
}

async function publicFromPrivate(privateKey: CryptoKey): Promise<CryptoKey> {
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  const pub: JsonWebKey = jwk.kty === "RSA"
    ? { kty: "RSA", n: jwk.n!, e: jwk.e! }
    : { kty: "EC", crv: jwk.crv!, x: jwk.x!, y: jwk.y! };
  return await crypto.subtle.importKey("jwk", pub, privateKey.algorithm, true, ["verify"]);
}

async function importPkcs8(der: Uint8Array): Promise<CryptoKey> {
  const data = der.slice().buffer as ArrayBuffer;
  try {
    return await crypto.subtle.importKey("pkcs8", data, RSA_SIGNING, true, ["sign"]);
  } catch { /* not RSA: try the curves */ }
  for (const namedCurve of EC_CURVES) {
    try {
      return await crypto.subtle.importKey("pkcs8", data, { name: "ECDSA", namedCurve }, true, [
        "sign",
      ]);
    } catch { /* next curve */ }
  }
  throw new TypeError("Cannot import private key: not an RSA, P-256 or P-384 key in PKCS#8");
}

/**
 * Imports a private key PEM block: `PRIVATE KEY` holding PKCS#8 or (as the Go agent wrote it)
 * PKCS#1, or `RSA PRIVATE KEY`. Throws `TypeError` naming the label for anything else.
 */
export async function importPrivateKey(block: PemBlock): Promise<KeyPair> {
  let pkcs8: Uint8Array;
  if (block.label === "RSA PRIVATE KEY") {
    pkcs8 = pkcs1ToPkcs8(block.der);
  } else if (block.label === "PRIVATE KEY") {
    pkcs8 = privateKeyFormat(block.der) === "pkcs1" ? pkcs1ToPkcs8(block.der) : block.der;
  } else if (block.label === "EC PRIVATE KEY") {
    throw new TypeError(
      'Cannot import "EC PRIVATE KEY" (SEC1): convert it with `openssl pkcs8 -topk8 -nocrypt`',
    );
  } else {
    throw new TypeError(`Cannot import private key from a "${block.label}" PEM block`);
  }
  const privateKey = await importPkcs8(pkcs8);
  return { privateKey, publicKey: await publicFromPrivate(privateKey) };
}

/** Exports a private key as PKCS#8 DER. */
export async function exportPkcs8(key: CryptoKey): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.exportKey("pkcs8", key));
}

/** True when both keys are the same public key (RSA n/e or EC point). */
export async function samePublicKey(a: CryptoKey, b: CryptoKey): Promise<boolean> {
  const [ja, jb] = await Promise.all([
    crypto.subtle.exportKey("jwk", a),
    crypto.subtle.exportKey("jwk", b),
  ]);
  return ja.kty === jb.kty && ja.n === jb.n && ja.e === jb.e && ja.crv === jb.crv &&
    ja.x === jb.x && ja.y === jb.y;
}

/** The signature algorithm a CA key signs with: PKCS#1 v1.5 for RSA (never PSS), ECDSA otherwise. */
export function signingAlgorithm(key: CryptoKey): RsaHashedImportParams | EcdsaParams {
  if (key.algorithm.name === "ECDSA") {
    const curve = (key.algorithm as EcKeyAlgorithm).namedCurve;
    return { name: "ECDSA", hash: curve === "P-384" ? "SHA-384" : "SHA-256" };
  }
  return RSA_SIGNING;
}
