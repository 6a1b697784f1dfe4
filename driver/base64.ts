/**
 * Standard padded base64, as the kernel reads and writes it (protocol doc §4.3). Strict on decode:
 * `Buffer` alone accepts URL-safe, unpadded and garbage input.
 *
 * @module
 */
import { Buffer } from "node:buffer";

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Standard, padded base64 (what the kernel reads).
 *
 * @example
 * ```ts
 * import { toBase64 } from "./base64.ts";
 * toBase64(new Uint8Array([1, 2, 3])); // "AQID"
 * ```
 */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/**
 * Decodes standard base64; throws `SyntaxError` on anything else.
 *
 * @example
 * ```ts
 * import { fromBase64 } from "./base64.ts";
 * fromBase64("AQID"); // Uint8Array [1, 2, 3]
 * ```
 */
export function fromBase64(text: string): Uint8Array {
  if (text.length % 4 !== 0 || !BASE64.test(text)) {
    throw new SyntaxError(
      `Cannot decode base64 "${text.slice(0, 24)}…": not standard padded base64`,
    );
  }
  return new Uint8Array(Buffer.from(text, "base64"));
}
