/**
 * The `self-signed` CA plugin: the default, compatible with the Camblet Go agent's `ca.pem`.
 *
 * @module
 */
import { definePlugin } from "../../types.ts";
import { parseSelfSignedConfig } from "./config.ts";
import { SelfSignedCa } from "./self_signed_ca.ts";

/** The plugin definition the registry lists. */
export const selfSignedCaPlugin = definePlugin({
  kind: "ca",
  name: "self-signed",
  description:
    "local CA in ca.pem (created on first start), RSA-2048 root, rotation without restart",
  parseConfig: parseSelfSignedConfig,
  create: (config, ctx) => SelfSignedCa.open(config, { clock: ctx.clock, log: ctx.log }),
});
