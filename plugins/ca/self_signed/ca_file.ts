/**
 * The CA file (`ca.pem`) and the retired-anchor file beside it.
 *
 * Reading accepts what the Camblet Go agent wrote (PKCS#1 under a `PRIVATE KEY` label, `Subject:`
 * and `Type: ROOT CA` headers, intermediates in the same file): the first CA certificate whose key
 * is in the file signs, and it must chain to a self-signed root in the file. Writing is standard
 * PEM: certificates from the signer up to the root, then PKCS#8 keys.
 *
 * @module
 */
import { privateKeyFormat } from "../../sdk/_der.ts";
import { exportPkcs8, importPrivateKey, type KeyPair, samePublicKey } from "../../sdk/keys.ts";
import { encodePem, parsePem } from "../../sdk/pem.ts";
import { type CaCredentials, isCa, isSelfSigned, x509 } from "../../sdk/x509.ts";

/** What a CA file holds, resolved. */
export interface CaMaterial {
  /** Signs leaves: the root itself, or an intermediate. */
  signer: CaCredentials;
  /** Certificates between the signer and the root (signer's issuer first); empty when the root signs. */
  intermediates: x509.X509Certificate[];
  /** The self-signed trust anchor. */
  root: x509.X509Certificate;
  /** The root's key, when the file holds it (needed to rotate an intermediate or create one). */
  rootKeys?: KeyPair;
}

/** How the file was written. */
export type CaFileFormat = "standard" | "camblet-go";

/** A root kept in the trust bundle after a rotation, until its last leaf has expired. */
export interface RetiredAnchor {
  certificate: x509.X509Certificate;
  /** Epoch ms after which the anchor can be dropped. */
  keepUntil: number;
}

const CERT = "CERTIFICATE";

/**
 * Resolves a CA file's text into {@linkcode CaMaterial}. `where` names the file in errors.
 * Throws `Error` saying what is missing or wrong.
 */
export async function parseCaFile(
  text: string,
  where: string,
): Promise<{ material: CaMaterial; format: CaFileFormat }> {
  const fail = (why: string) => new Error(`Cannot load CA file "${where}": ${why}`);
  let blocks;
  try {
    blocks = parsePem(text);
  } catch (e) {
    throw fail((e as Error).message);
  }
  let format: CaFileFormat = "standard";
  const certs: x509.X509Certificate[] = [];
  const keys: KeyPair[] = [];
  for (const block of blocks) {
    if (Object.keys(block.headers).length > 0) format = "camblet-go";
    if (block.label === CERT) {
      try {
        certs.push(new x509.X509Certificate(block.der.slice().buffer as ArrayBuffer));
      } catch (e) {
        throw fail(`certificate ${certs.length + 1} cannot be parsed: ${(e as Error).message}`);
      }
    } else if (block.label.endsWith("PRIVATE KEY")) {
      try {
        keys.push(await importPrivateKey(block));
      } catch (e) {
        throw fail((e as Error).message);
      }
    }
  }
  if (blocks.some((b) => b.label === "PRIVATE KEY" && isPkcs1(b.der))) format = "camblet-go";
  if (certs.length === 0) throw fail("it holds no CERTIFICATE block");
  if (keys.length === 0) throw fail("it holds no PRIVATE KEY block");

  const keyFor = async (cert: x509.X509Certificate): Promise<KeyPair | undefined> => {
    const pub = await cert.publicKey.export().catch(() => undefined);
    if (!pub) return undefined;
    for (const k of keys) if (await samePublicKey(k.publicKey, pub)) return k;
    return undefined;
  };
  let signer: CaCredentials | undefined;
  for (const cert of certs) {
    if (!isCa(cert)) continue;
    const k = await keyFor(cert);
    if (k) {
      signer = { certificate: cert, keys: k };
      break;
    }
  }
  if (!signer) throw fail("no CA certificate in it matches a private key in it");

  const intermediates: x509.X509Certificate[] = [];
  let current = signer.certificate;
  for (let depth = 0; !(await isSelfSigned(current)); depth++) {
    if (depth > 8) throw fail("its chain is longer than 8 certificates");
    let parent: x509.X509Certificate | undefined;
    for (const c of certs) {
      if (c.subject === current.issuer && c !== current && await verifiedBy(current, c)) {
        parent = c;
        break;
      }
    }
    if (!parent) {
      throw fail(
        `certificate "${current.subject}" does not chain to a self-signed root in the file (issuer "${current.issuer}" missing)`,
      );
    }
    if (!(await isSelfSigned(parent))) intermediates.push(parent);
    current = parent;
  }
  const material: CaMaterial = { signer, intermediates, root: current };
  if (current !== signer.certificate) {
    const rootKeys = await keyFor(current);
    if (rootKeys) material.rootKeys = rootKeys;
  } else {
    material.rootKeys = signer.keys;
  }
  return { material, format };
}

function isPkcs1(der: Uint8Array): boolean {
  try {
    return privateKeyFormat(der) === "pkcs1";
  } catch {
    return false;
  }
}

async function verifiedBy(child: x509.X509Certificate, parent: x509.X509Certificate) {
  try {
    return await child.verify({ publicKey: parent.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}

/** Standard PEM for `ca.pem`: signer, intermediates, root, then the signer's and root's keys. */
export async function encodeCaFile(material: CaMaterial): Promise<string> {
  const der = (c: x509.X509Certificate) => new Uint8Array(c.rawData);
  const signerIsRoot = material.signer.certificate === material.root ||
    material.signer.certificate.equal(material.root);
  const parts = [encodePem(CERT, der(material.signer.certificate))];
  for (const c of material.intermediates) parts.push(encodePem(CERT, der(c)));
  if (!signerIsRoot) parts.push(encodePem(CERT, der(material.root)));
  parts.push(encodePem("PRIVATE KEY", await exportPkcs8(material.signer.keys.privateKey)));
  if (!signerIsRoot && material.rootKeys) {
    parts.push(encodePem("PRIVATE KEY", await exportPkcs8(material.rootKeys.privateKey)));
  }
  return parts.join("");
}

/** Standard PEM of trust anchors (what `public_ca.crt` holds). */
export function encodeAnchors(anchors: readonly x509.X509Certificate[]): string {
  return anchors.map((c) => encodePem(CERT, new Uint8Array(c.rawData))).join("");
}

/**
 * The retired-anchor file: each certificate preceded by a `Keep-Until: <ISO time>` line (text
 * outside PEM blocks, which OpenSSL and PEM readers ignore).
 */
export function encodeRetired(retired: readonly RetiredAnchor[]): string {
  return retired.map((r) =>
    `Keep-Until: ${new Date(r.keepUntil).toISOString()}\n` +
    encodePem(CERT, new Uint8Array(r.certificate.rawData))
  ).join("");
}

/** Reads the retired-anchor file written by {@linkcode encodeRetired}. */
export function parseRetired(text: string, where: string): RetiredAnchor[] {
  const out: RetiredAnchor[] = [];
  const re =
    /Keep-Until:\s*(\S+)\s*\n(-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----)/g;
  for (const m of text.matchAll(re)) {
    const keepUntil = Date.parse(m[1]!);
    if (Number.isNaN(keepUntil)) {
      throw new Error(`Cannot read retired anchors "${where}": bad Keep-Until "${m[1]}"`);
    }
    const [block] = parsePem(m[2]!);
    out.push({
      certificate: new x509.X509Certificate(block!.der.slice().buffer as ArrayBuffer),
      keepUntil,
    });
  }
  return out;
}
