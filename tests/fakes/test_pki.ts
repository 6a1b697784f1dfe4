/**
 * The SDK's PEM and CA helpers for driver tests: driver code never imports plugins/, so tests
 * beside driver modules that need a throwaway CA or a PEM file come through here.
 *
 * @module
 */
export { encodePem, parsePem } from "../../plugins/sdk/pem.ts";
export { createRootCa, x509 } from "../../plugins/sdk/x509.ts";
