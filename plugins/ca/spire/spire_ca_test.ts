/**
 * The CA conformance suite against a real SPIRE server and agent: the plugin is a downstream CA
 * of SPIRE's RSA CA. The leaves chain to a CA SPIRE issued at real time, so the system clock runs.
 */
import { skip } from "../../../tests/_skip.ts";
import { peerMissing } from "../../../tests/peers/ensure_peer.ts";
import { caConformance } from "../conformance.ts";
import { systemClock } from "../../types.ts";
import { SpireCa } from "./spire_ca.ts";
import { spireConfig, startSpireForAgent, TD, testLog } from "./_test_spire.ts";

caConformance("spire (downstream CA, real SPIRE)", {
  ignore: skip(peerMissing("spire-server", "spire-agent")),
  clockSkewMs: 5_000,
  async setup() {
    const { spire } = await startSpireForAgent();
    try {
      const ca = await SpireCa.open(spireConfig(spire, { maxTtl: "2h", caTtl: "6h" }), {
        clock: systemClock,
        log: testLog,
        trustDomain: TD,
        timer: false,
      });
      const dispose = ca.dispose.bind(ca);
      ca.dispose = async () => {
        await dispose();
        await spire.stop();
      };
      return { ca, clock: systemClock };
    } catch (e) {
      await spire.stop();
      throw e;
    }
  },
});
