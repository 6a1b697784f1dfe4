/**
 * The X.509 library (@peculiar/x509) for the driver's kernel-answer code, loaded after the
 * polyfill it needs (v2 resolves its crypto provider through tsyringe).
 *
 * @example
 * ```ts
 * import { x509 } from "./x509.ts";
 * typeof x509.X509Certificate; // "function"
 * ```
 *
 * @module
 */
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

export { x509 };
