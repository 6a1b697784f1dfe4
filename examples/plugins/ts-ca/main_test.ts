import { caConformance } from "../../../plugins/ca/conformance.ts";
import { systemClock } from "../../../plugins/types.ts";
import { loadExternalCa, TS_CA_PLUGIN } from "../../../tests/fakes/ca_plugins.ts";

caConformance("external TypeScript example (examples/plugins/ts-ca)", {
  clockSkewMs: 5000,
  async setup() {
    const { ca, plugins } = await loadExternalCa(TS_CA_PLUGIN, { config: { maxTtl: "2h" } });
    // Disposing the loaded set stops the process (the CA is a prefixing proxy of the instance).
    return {
      ca: Object.assign(Object.create(ca), { dispose: () => plugins.dispose() }),
      clock: systemClock,
    };
  },
});
