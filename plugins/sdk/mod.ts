/**
 * The camblet-agent plugin SDK: what an external plugin written in TypeScript imports.
 *
 * @example
 * ```ts ignore
 * import { createRootCa, issueLeaf, serveCa } from "../../plugins/sdk/mod.ts";
 * ```
 *
 * @module
 */
export * from "./protocol.ts";
export { type PluginHandlers, type ServeOptions, servePlugin } from "./serve.ts";
export { type CaPlugin, type CaSignInput, type CaSignOutput, serveCa } from "./ca.ts";
export { createCsr, csrNames, parseCsr, verifyCsr } from "./csr.ts";
export { type LocalLeafOptions, signLeafLocally } from "./leaf_signer.ts";
export { type CaRenewalInput, type CaRenewalPlan, planCaRenewal } from "./renewal.ts";
export { CapabilityError } from "./errors.ts";
export { encodePem, fromBase64, parsePem, toBase64 } from "./pem.ts";
export { exportPkcs8, generateRsaKeyPair, importPrivateKey, type KeyPair } from "./keys.ts";
export {
  type CaCredentials,
  createIntermediateCa,
  createRootCa,
  issueLeaf,
  randomSerial,
  x509,
} from "./x509.ts";
export { parseDuration } from "./duration.ts";
export { durationMs, parseWith, zodProblems } from "./config.ts";
