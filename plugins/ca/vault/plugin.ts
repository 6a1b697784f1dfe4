/**
 * The `vault` CA plugin: workload certificates chained to a HashiCorp Vault or OpenBao PKI mount.
 * `camblet-agent --ca vault` with `VAULT_ADDR` and `VAULT_TOKEN` set uses mount `pki` in
 * `intermediate` mode. See README.md.
 *
 * @module
 */
import { definePlugin } from "../../types.ts";
import type { CertificateAuthority } from "../types.ts";
import { parseVaultConfig } from "./config.ts";

/** The plugin definition the registry lists. */
export const vaultCaPlugin = definePlugin({
  kind: "ca",
  name: "vault",
  description:
    "Vault/OpenBao PKI: an agent-held intermediate signed by Vault (default) or every leaf signed by Vault",
  // The VAULT_* variables are part of the config, as for the vault CLI and Vault Agent.
  parseConfig: (raw: unknown) => parseVaultConfig(raw, Deno.env.toObject()),
  create: async (config, ctx): Promise<CertificateAuthority> => {
    const options = { clock: ctx.clock, log: ctx.log, metrics: ctx.metrics, signal: ctx.signal };
    // The CA code loads only when the config selects it.
    return config.mode === "leaf"
      ? await (await import("./leaf_ca.ts")).VaultLeafCa.open(config, options)
      : await (await import("./intermediate_ca.ts")).VaultIntermediateCa.open(config, options);
  },
});
