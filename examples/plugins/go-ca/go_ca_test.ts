import { caConformance } from "../../../plugins/ca/conformance.ts";
import { systemClock } from "../../../plugins/types.ts";
import { goCaPlugin, loadExternalCa } from "../../../tests/fakes/ca_plugins.ts";

caConformance("external Go example (examples/plugins/go-ca)", {
  clockSkewMs: 5000,
  async setup() {
    const { ca, plugins } = await loadExternalCa(await goCaPlugin(), {
      config: { maxTtlSeconds: 7200 },
    });
    return {
      ca: Object.assign(Object.create(ca), { dispose: () => plugins.dispose() }),
      clock: systemClock,
    };
  },
});
