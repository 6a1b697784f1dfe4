/**
 * The CA conformance suite against a real Vault (OpenBao's API), in both modes. The leaves chain
 * to certificates Vault issued at real time, so the CA runs on the system clock (with skew).
 */
import { skip } from "../../../tests/_skip.ts";
import { peerMissing } from "../../../tests/peers/ensure_peer.ts";
import { caConformance } from "../conformance.ts";
import { systemClock } from "../../types.ts";
import { startPkiVault, testLog, vaultConfig } from "./_test_vault.ts";
import { VaultIntermediateCa } from "./intermediate_ca.ts";
import { VaultLeafCa } from "./leaf_ca.ts";

for (const mode of ["intermediate", "leaf"] as const) {
  caConformance(`vault (${mode} mode, real Vault)`, {
    ignore: skip(peerMissing("vault")),
    clockSkewMs: 5_000,
    async setup() {
      const { vault } = await startPkiVault();
      try {
        const config = vaultConfig(vault, { mode, maxTtl: "2h", leaf: { role: "camblet" } });
        const options = { clock: systemClock, log: testLog, timer: false };
        const ca = mode === "leaf"
          ? await VaultLeafCa.open(config, options)
          : await VaultIntermediateCa.open(config, options);
        const dispose = ca.dispose.bind(ca);
        ca.dispose = async () => {
          await dispose();
          await vault.stop();
        };
        return { ca, clock: systemClock };
      } catch (e) {
        await vault.stop();
        throw e;
      }
    },
  });
}
