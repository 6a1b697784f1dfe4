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
import { VaultIntermediateCa } from "./intermediate_ca.ts";
import { VaultLeafCa } from "./leaf_ca.ts";

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
    return config.mode === "leaf"
      ? await VaultLeafCa.open(config, options)
      : await VaultIntermediateCa.open(config, options);
  },
});
