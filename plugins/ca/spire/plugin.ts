/**
 * The `spire` CA plugin: the agent as a SPIRE downstream CA (like a nested SPIRE server), signing
 * workload certificates in SPIRE's trust domain. See README.md.
 *
 * @module
 */
import { definePlugin } from "../../types.ts";
import { parseSpireConfig } from "./config.ts";

/** The plugin definition the registry lists. */
export const spireCaPlugin = definePlugin({
  kind: "ca",
  name: "spire",
  description:
    "SPIRE downstream CA: an X509-SVID from the Workload API buys a CA from the SPIRE server; leaves signed locally",
  // SPIFFE_ENDPOINT_SOCKET is the SPIFFE-standard way to name the Workload API socket.
  parseConfig: (raw: unknown) => parseSpireConfig(raw, Deno.env.toObject()),
  // The CA itself (gRPC, the Workload API client) loads only when the config selects it.
  create: async (config, ctx) =>
    (await import("./spire_ca.ts")).SpireCa.open(config, {
      clock: ctx.clock,
      log: ctx.log,
      metrics: ctx.metrics,
      trustDomain: ctx.trustDomain,
      signal: ctx.signal,
    }),
});
