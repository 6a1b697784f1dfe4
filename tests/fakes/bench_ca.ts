/**
 * A self-signed CA (RSA-2048 root, as the kernel needs) in a temporary directory removed when the
 * process exits, for benchmarks.
 *
 * @module
 */
import { logger } from "../../agent/log.ts";
import { parseSelfSignedConfig } from "../../plugins/ca/self_signed/config.ts";
import { SelfSignedCa } from "../../plugins/ca/self_signed/self_signed_ca.ts";

/** Opens a fresh CA under a temp directory named with `prefix`. */
export async function benchSelfSignedCa(prefix: string): Promise<SelfSignedCa> {
  const dir = Deno.makeTempDirSync({ prefix });
  globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  const parsed = parseSelfSignedConfig({ caPemPath: `${dir}/ca.pem`, watch: false });
  if (!parsed.ok) throw new Error("self-signed config");
  return await SelfSignedCa.open(parsed.value, {
    clock: { now: () => Date.now() },
    log: logger("bench"),
    maintenanceIntervalMs: 0,
  });
}
