/**
 * PEM reading and writing. Reading is tolerant, as the Camblet Go agent's `ca.pem` needs: RFC 1421
 * style headers inside a block (`Subject: …`, `Type: ROOT CA`), CRLF line ends, text between
 * blocks. Writing is strict RFC 7468: no headers, 64-column base64, LF.
 *
 * @module
 */
import { fromBase64, toBase64 } from "../../driver/base64.ts";

// The kernel's base64 lives with the kernel protocol; plugins get it here.
export { fromBase64, toBase64 };

/** One PEM block. */
export interface PemBlock {
  /** The label after `BEGIN `, e.g. `CERTIFICATE`, `PRIVATE KEY`. */
  label: string;
  /** Non-standard headers found inside the block (kept for diagnostics, never written). */
  headers: Record<string, string>;
  der: Uint8Array;
}

/**
 * Parses every PEM block in `text`. Throws `SyntaxError` naming the block for an unterminated
 * block or bad base64.
 *
 * @example
 * ```ts
 * import { encodePem, parsePem } from "./pem.ts";
 * const [block] = parsePem(encodePem("CERTIFICATE", new Uint8Array([1, 2, 3])));
 * block!.label; // "CERTIFICATE"
 * ```
 */
export function parsePem(text: string): PemBlock[] {
  const lines = text.split(/\r?\n/);
  const blocks: PemBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const begin = /^-----BEGIN ([A-Z0-9 ]+)-----\s*$/.exec(lines[i]!.trim());
    if (!begin) continue;
    const label = begin[1]!;
    const headers: Record<string, string> = {};
    let body = "";
    let inHeaders = true;
    let j = i + 1;
    for (; j < lines.length; j++) {
      const line = lines[j]!.trim();
      if (line === `-----END ${label}-----`) break;
      if (line.startsWith("-----")) {
        throw new SyntaxError(`Cannot read PEM block "${label}" (line ${i + 1}): no END line`);
      }
      const header = inHeaders ? /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line) : null;
      if (header) {
        headers[header[1]!] = header[2]!;
        continue;
      }
      if (line === "") continue;
      inHeaders = false;
      body += line;
    }
    if (j >= lines.length) {
      throw new SyntaxError(`Cannot read PEM block "${label}" (line ${i + 1}): no END line`);
    }
    let der: Uint8Array;
    try {
      der = fromBase64(body);
    } catch {
      throw new SyntaxError(`Cannot read PEM block "${label}" (line ${i + 1}): bad base64`);
    }
    blocks.push({ label, headers, der });
    i = j;
  }
  return blocks;
}

/** Encodes one block as RFC 7468 PEM (ends with a newline). */
export function encodePem(label: string, der: Uint8Array): string {
  const b64 = toBase64(der);
  const lines = [`-----BEGIN ${label}-----`];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  lines.push(`-----END ${label}-----`, "");
  return lines.join("\n");
}
