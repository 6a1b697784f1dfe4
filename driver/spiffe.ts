/**
 * SPIFFE ID and trust domain syntax (SPIFFE standard, "SPIFFE-ID" §2): trust domain of
 * `[a-z0-9.-_]`, path segments of `[A-Za-z0-9.-_]`, no empty, `.` or `..` segments, no trailing `/`.
 *
 * @module
 */

const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Returns why `td` is not a valid trust domain name, or `undefined` when it is. */
export function trustDomainProblem(td: string): string | undefined {
  if (td === "") return "trust domain is empty";
  if (td.length > 255) return `trust domain "${td}" is longer than 255 characters`;
  if (!TRUST_DOMAIN.test(td)) {
    return `trust domain "${td}" may contain only lower-case letters, digits, ".", "-" and "_"`;
  }
  return undefined;
}

/** Returns why `path` (without leading `/`) is not a valid SPIFFE path, or `undefined`. */
export function spiffePathProblem(path: string, allowTemplates = false): string | undefined {
  if (path === "") return "path is empty";
  for (const seg of path.split("/")) {
    if (seg === "") return `path "${path}" has an empty segment`;
    if (seg === "." || seg === "..") return `path "${path}" has a "${seg}" segment`;
    // `[label]` placeholders are replaced by the kernel with label values, which may contain ":".
    const plain = allowTemplates ? seg.replace(/\[[^\][]+\]/g, "x") : seg;
    if (!SEGMENT.test(plain)) {
      return `path segment "${seg}" may contain only letters, digits, ".", "-" and "_"` +
        (allowTemplates ? ' and "[label]" placeholders' : "");
    }
  }
  return undefined;
}

/** A parsed SPIFFE ID. */
export interface SpiffeId {
  trustDomain: string;
  /** Path without the leading `/`; empty for the trust domain's own ID. */
  path: string;
}

/**
 * Parses `spiffe://td/path`; throws `TypeError` saying why it is not a SPIFFE ID.
 *
 * @example
 * ```ts
 * import { parseSpiffeId } from "./spiffe.ts";
 * parseSpiffeId("spiffe://acme.corp/web"); // { trustDomain: "acme.corp", path: "web" }
 * ```
 */
export function parseSpiffeId(id: string): SpiffeId {
  const problem = spiffeIdProblem(id);
  if (problem) throw new TypeError(problem);
  const rest = id.slice("spiffe://".length);
  const slash = rest.indexOf("/");
  return slash < 0
    ? { trustDomain: rest, path: "" }
    : { trustDomain: rest.slice(0, slash), path: rest.slice(slash + 1) };
}

/** Returns why `id` is not a SPIFFE ID (`"x" is not a SPIFFE ID: …`), or `undefined`. */
export function spiffeIdProblem(id: string): string | undefined {
  const bad = (why: string) => `"${id}" is not a SPIFFE ID: ${why}`;
  if (!id.startsWith("spiffe://")) return bad('it must start with "spiffe://"');
  if (id.length > 2048) return bad("longer than 2048 bytes");
  const rest = id.slice("spiffe://".length);
  const slash = rest.indexOf("/");
  const td = slash < 0 ? rest : rest.slice(0, slash);
  const tdProblem = trustDomainProblem(td);
  if (tdProblem) return bad(tdProblem);
  if (slash >= 0) {
    const pathProblem = spiffePathProblem(rest.slice(slash + 1));
    if (pathProblem) return bad(pathProblem);
  }
  return undefined;
}

/**
 * The kernel's peer check (protocol doc §5): `peer` is allowed when it equals an entry or extends
 * it at a `/` boundary. An empty list allows any peer.
 */
export function spiffeIdAllowed(peer: string, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true;
  return allowed.some((a) => peer === a || peer.startsWith(a.endsWith("/") ? a : a + "/"));
}
