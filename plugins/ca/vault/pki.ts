/**
 * The Vault PKI secrets engine calls the plugin makes: sign the agent's intermediate
 * (`<mount>/root/sign-intermediate` or `<mount>/issuer/<ref>/sign-intermediate`), sign a leaf
 * (`<mount>/sign/<role>`), and read issuers (`<mount>/issuer/<ref>/json`, `LIST <mount>/issuers`,
 * both unauthenticated in Vault and OpenBao).
 *
 * @module
 */
import { certificatesFrom } from "../../sdk/ca_chain.ts";
import { encodePem } from "../../sdk/pem.ts";
import { dataString, type VaultBody, type VaultClient } from "./vault_client.ts";

/** Per-request limits. */
export interface PkiRequestOptions {
  signal: AbortSignal;
  timeoutMs: number;
}

/** A certificate Vault signed, DER. */
export interface VaultSigned {
  certificate: Uint8Array;
  /** The issuing CA and its parents as Vault knows them (without `certificate`). */
  issuerChain: Uint8Array[];
}

function seconds(ms: number): string {
  return `${Math.max(1, Math.floor(ms / 1000))}s`;
}

function listOf(body: VaultBody, field: string): Uint8Array[] {
  const v = (body.data as VaultBody | undefined)?.[field];
  if (!Array.isArray(v)) return [];
  return v.filter((x): x is string => typeof x === "string").flatMap(certificatesFrom);
}

function signedOf(res: VaultBody, what: string): VaultSigned {
  const [certificate] = certificatesFrom(dataString(res, "certificate", what));
  if (!certificate) throw new TypeError(`Cannot read ${what}: no certificate in Vault's answer`);
  // `ca_chain` starts with the new certificate for sign-intermediate, not for sign/<role>.
  let issuerChain = listOf(res, "ca_chain").filter((d) =>
    !(d.length === certificate.length && d.every((b, i) => b === certificate[i]))
  );
  if (issuerChain.length === 0) issuerChain = certificatesFrom(dataString(res, "issuing_ca", what));
  return { certificate, issuerChain };
}

/** The sign-intermediate path for an issuer reference. */
export function signIntermediatePath(mount: string, issuer: string): string {
  return issuer === "default"
    ? `${mount}/root/sign-intermediate`
    : `${mount}/issuer/${encodeURIComponent(issuer)}/sign-intermediate`;
}

/** Has Vault sign the agent's intermediate CA (path length 0: it signs leaves only). */
export async function signIntermediate(
  client: VaultClient,
  p: { mount: string; issuer: string; csr: Uint8Array; commonName: string; ttlMs: number },
  o: PkiRequestOptions,
): Promise<VaultSigned> {
  const path = signIntermediatePath(p.mount, p.issuer);
  const res = await client.request("POST", path, {
    ...o,
    body: {
      csr: encodePem("CERTIFICATE REQUEST", p.csr),
      common_name: p.commonName,
      ttl: seconds(p.ttlMs),
      format: "der",
      max_path_length: 0,
      exclude_cn_from_sans: true,
      use_csr_values: false,
    },
  });
  return signedOf(res, `the intermediate from ${path}`);
}

/** Has Vault sign one workload leaf with `<mount>/sign/<role>`. */
export async function signLeaf(
  client: VaultClient,
  p: {
    mount: string;
    role: string;
    csr: Uint8Array;
    spiffeId: string;
    dnsNames: readonly string[];
    ttlMs: number;
  },
  o: PkiRequestOptions,
): Promise<VaultSigned> {
  const path = `${p.mount}/sign/${encodeURIComponent(p.role)}`;
  const body: Record<string, unknown> = {
    csr: encodePem("CERTIFICATE REQUEST", p.csr),
    uri_sans: p.spiffeId,
    ttl: seconds(p.ttlMs),
    format: "der",
    exclude_cn_from_sans: true,
  };
  if (p.dnsNames.length > 0) body.alt_names = p.dnsNames.join(",");
  return signedOf(await client.request("POST", path, { ...o, body }), `the leaf from ${path}`);
}

/** An issuer of the mount. */
export interface VaultIssuer {
  certificate: Uint8Array;
  /** The issuer and its parents (as imported or generated). */
  caChain: Uint8Array[];
  revoked: boolean;
}

/** Reads `<mount>/issuer/<ref>/json` (`default` resolves to the default issuer). */
export async function readIssuer(
  client: VaultClient,
  mount: string,
  ref: string,
  o: PkiRequestOptions,
): Promise<VaultIssuer> {
  const path = `${mount}/issuer/${encodeURIComponent(ref)}/json`;
  const res = await client.request("GET", path, o);
  const [certificate] = certificatesFrom(dataString(res, "certificate", `issuer "${ref}"`));
  if (!certificate) throw new TypeError(`Cannot read issuer "${ref}": no certificate`);
  return {
    certificate,
    caChain: listOf(res, "ca_chain"),
    revoked: (res.data as VaultBody).revoked === true,
  };
}

/** Ids of the mount's issuers. */
export async function listIssuers(
  client: VaultClient,
  mount: string,
  o: PkiRequestOptions,
): Promise<string[]> {
  const res = await client.request("GET", `${mount}/issuers`, { ...o, list: true });
  const keys = (res.data as VaultBody | undefined)?.keys;
  return Array.isArray(keys) ? keys.map(String) : [];
}
